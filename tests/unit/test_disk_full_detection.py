"""A full disk is recognised by its code (errno, SQLite's result code, PostgreSQL's SQLSTATE), not by wording.

Threat: none — an operator's outage. The command that fails on a full disk must say so (code ``disk_full``,
"Free space …") so the operator frees space instead of suspecting the database; and an unrelated error whose
text happens to contain "full" must not send them to the wrong fix. ``tests/faults/test_disk_full.py`` fills a
real filesystem; this checks the recognition on each driver's real error, wrapped as the libraries wrap it.
"""

from __future__ import annotations

import errno
import sqlite3

import psycopg.errors
import pytest
from eventsourcing.persistence import OperationalError as LibOperationalError
from sqlalchemy.exc import OperationalError as SAOperationalError

from ledger.errors import StorageError, is_disk_full


def sqlite_full() -> sqlite3.Error:
    """SQLite's own SQLITE_FULL: a database capped at three pages, filled."""
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA page_size = 512")
    db.execute("CREATE TABLE t (x BLOB)")
    db.execute("PRAGMA max_page_count = 3")
    try:
        for _ in range(100):
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 400,))
    except sqlite3.Error as exc:
        return exc
    finally:
        db.close()
    raise AssertionError("the capped database never filled")


def wrapped(inner: BaseException) -> BaseException:
    """``inner`` as eventsourcing raises it (``raise … from``), inside our StorageError."""
    try:
        try:
            raise LibOperationalError(str(inner)) from inner
        except LibOperationalError as lib:
            raise StorageError("the event store refused the write") from lib
    except StorageError as ours:
        return ours


@pytest.mark.parametrize(
    "make",
    [
        sqlite_full,
        lambda: OSError(errno.ENOSPC, "No space left on device"),
        lambda: OSError(errno.EDQUOT, "Disk quota exceeded"),
        lambda: psycopg.errors.DiskFull("could not extend file: No space left on device"),
        lambda: SAOperationalError("INSERT …", {}, psycopg.errors.DiskFull("could not extend file")),
    ],
    ids=["sqlite", "enospc", "edquot", "postgres", "sqlalchemy-postgres"],
)
def test_a_full_disk_is_recognised_however_deeply_wrapped(make) -> None:  # type: ignore[no-untyped-def]
    exc = make()
    assert is_disk_full(exc)
    assert is_disk_full(wrapped(exc))


def test_wording_alone_is_not_a_full_disk() -> None:
    assert not is_disk_full(LibOperationalError("connection pool is full"))
    assert not is_disk_full(sqlite3.OperationalError("database table is full of ghosts"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied: /full/path"))
    assert not is_disk_full(wrapped(psycopg.errors.QueryCanceled("canceling statement: disk quota full?")))
