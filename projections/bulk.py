"""``Projector.rebuild`` in bulk: build fresh tables apart from the live ones, then swap them in at once.

The live (incremental) path writes each page into the live, indexed tables and commits it durably with its
position. A rebuild does not need that: until it is finished nothing may read its tables, and if it dies its
work is simply thrown away. So it runs apart (figure "projection rebuild"; the profile is in
docs/performance.md):

1. the chosen projections' tables are created in a *scratch* location — on SQLite a private file beside the
   views database, written with no durability at all (``synchronous=OFF``, an in-memory journal, a large page
   cache); on PostgreSQL a schema of the live database whose sessions commit asynchronously — without the
   secondary indexes nobody reads during the build (a projection names those its own handlers read through
   in ``Projection.build_indexes``; primary keys and unique constraints stay, they decide upserts);
2. the log up to its end at the start is applied there by the same projector code as the live path (same
   verification, same decoding, same handlers, in larger pages), so the rows are by construction those of an
   incremental run; the indexes are created at the end, in one sort each;
3. one transaction on the live database, under the projectors' lock, replaces the live tables by the new ones
   and sets the rebuilt projections' positions to that end — SQLite: ``DROP TABLE``, ``CREATE TABLE`` and
   ``INSERT … SELECT`` from the attached scratch file (SQLite's transfer optimisation copies the B-trees
   page by page), then ``CREATE INDEX``; PostgreSQL: ``DROP TABLE`` and ``ALTER TABLE … SET SCHEMA``. Both
   databases' DDL is transactional: a reader sees the old views or the new ones, never a mix;
4. the live path then catches up whatever was logged since (another process may have been projecting
   into the old tables all along: their position is simply set back to the rebuild's end).

A crash (or an error) anywhere before the swap's commit leaves the live views and positions exactly as they
were; the scratch is removed on the way out, and a scratch left by a killed rebuild is removed by the next one
(so of two rebuilds started at once the earlier one fails, changing nothing). While it runs the rebuild needs
room for a second copy of the views it rebuilds.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Index, Table, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from ledger.files import private_file
from ledger.storage import storage_error, upsert
from projections.schema import tracking

__all__ = ["BULK_PAGE", "SCRATCH_PREFIX", "bulk_rebuild", "can_bulk_rebuild"]

BULK_PAGE = 5000  # events per scratch transaction: commits there cost no sync, larger pages fold more in memory
SCRATCH_PREFIX = "flagledger_rebuild_"  # PostgreSQL scratch schemas; SQLite: "<views file>.rebuild-<token>"
SCRATCH_CACHE_KIB = 65536  # 64 MB of SQLite page cache while building (the scratch connection only)

Lock = Callable[[Connection], None]  # takes the projectors' lock on a live connection
Swap = Callable[[Sequence[Table], set[str], Sequence[str], int], None]


def can_bulk_rebuild(engine: Engine) -> bool:
    """A SQLite file or a PostgreSQL database (an in-memory SQLite database has nowhere to put a scratch)."""
    if engine.dialect.name == "postgresql":
        return True
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


def bulk_rebuild(
    live: Engine,
    tables: Sequence[Table],
    early: set[str],
    names: Sequence[str],
    end: int,
    build: Callable[[Engine], int],
    lock: Lock,
) -> int:
    """Rebuild the projections ``names`` (their ``tables``) apart and swap them in (see the module); returns
    the events applied. ``early``: the indexes made before the build; ``build`` applies the log up to
    ``end`` to the scratch engine it is given; ``lock`` takes the projectors' lock on a live connection."""
    with _scratch(live, lock) as (engine, swap):
        try:
            with engine.begin() as conn:
                tracking.create(conn)
                for t in tables:
                    conn.execute(CreateTable(t))
                    for ix in _indexes(t):
                        if ix.name in early:
                            conn.execute(CreateIndex(ix))
            applied = build(engine)
        except SQLAlchemyError as exc:
            raise storage_error("cannot build the rebuilt views apart", exc, _NOTHING_CHANGED) from exc
        swap(tables, early, names, end)
    return applied


_NOTHING_CHANGED = "the live views were not changed — fix the cause and run `flagledger projections rebuild` again"


def _indexes(table: Table) -> list[Index]:
    return sorted(table.indexes, key=lambda ix: str(ix.name))


@contextmanager
def _scratch(live: Engine, lock: Lock) -> Iterator[tuple[Engine, Swap]]:
    if live.dialect.name == "postgresql":
        with _pg_scratch(live, lock) as made:
            yield made
    else:
        with _sqlite_scratch(live, lock) as made:
            yield made


# -- SQLite ------------------------------------------------------------------------------------------------------
@contextmanager
def _sqlite_scratch(live: Engine, lock: Lock) -> Iterator[tuple[Engine, Swap]]:
    views = Path(str(live.url.database)).resolve()
    for old in views.parent.glob(f"{views.name}.rebuild-*"):  # left by a rebuild that was killed
        old.unlink(missing_ok=True)
    path = private_file(views.parent / f"{views.name}.rebuild-{secrets.token_hex(6)}")
    engine = sa_create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _no_durability(dbapi_conn: Any, _: Any) -> None:
        # nothing of the scratch survives a crash anyway: it is thrown away unless the swap commits
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=MEMORY")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute(f"PRAGMA cache_size=-{SCRATCH_CACHE_KIB}")
        cur.close()

    def swap(tables: Sequence[Table], early: set[str], names: Sequence[str], end: int) -> None:
        engine.dispose()  # every scratch write is in the file (synchronous=OFF still writes it at commit)
        _sqlite_swap(live, lock, path, tables, names, end)  # (every index is made after the copy)

    try:
        yield engine, swap
    finally:
        engine.dispose()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sqlite_swap(live: Engine, lock: Lock, path: Path, tables: Sequence[Table], names: Sequence[str], end: int) -> None:
    try:
        with live.connect() as conn:
            conn.exec_driver_sql("ATTACH DATABASE ? AS flagledger_rebuild", (str(path),))
            conn.commit()  # (ATTACH runs outside any transaction; the driver began none)
            try:
                with conn.begin():
                    lock(conn)  # the write lock first: no live page interleaves with the swap
                    for t in reversed(tables):
                        conn.exec_driver_sql(f'DROP TABLE IF EXISTS main."{t.name}"')
                    for t in tables:
                        conn.execute(CreateTable(t))  # (unqualified: main) as the scratch's, indexes below
                        cols = ", ".join(f'"{c.name}"' for c in t.columns)
                        conn.exec_driver_sql(
                            f'INSERT INTO main."{t.name}" ({cols}) SELECT {cols} FROM flagledger_rebuild."{t.name}"'
                        )
                        for ix in _indexes(t):
                            conn.execute(CreateIndex(ix))
                    _positions(conn, names, end)
            finally:
                conn.exec_driver_sql("DETACH DATABASE flagledger_rebuild")
                conn.commit()
    except SQLAlchemyError as exc:
        raise storage_error("cannot swap the rebuilt views in", exc, _NOTHING_CHANGED) from exc


# -- PostgreSQL --------------------------------------------------------------------------------------------------
@contextmanager
def _pg_scratch(live: Engine, lock: Lock) -> Iterator[tuple[Engine, Swap]]:
    schema = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
    url = live.url.render_as_string(hide_password=False)
    try:
        with live.begin() as conn:
            _drop_left_over(conn)
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as exc:
        raise storage_error("cannot make the rebuild's scratch schema", exc, _NOTHING_CHANGED) from exc
    # asynchronous commits: a crash may lose the last scratch pages, and a crash discards the scratch anyway
    engine = sa_create_engine(url, connect_args={"options": f"-csearch_path={schema} -csynchronous_commit=off"})

    def swap(tables: Sequence[Table], early: set[str], names: Sequence[str], end: int) -> None:
        try:
            with engine.begin() as conn:  # the indexes, in the scratch, before any live lock is taken
                for t in tables:
                    for ix in _indexes(t):
                        if ix.name not in early:
                            conn.execute(CreateIndex(ix))
            with live.begin() as conn:
                lock(conn)
                target = str(conn.execute(text("SELECT current_schema()")).scalar_one())
                for t in reversed(tables):
                    conn.execute(text(f'DROP TABLE IF EXISTS "{target}"."{t.name}"'))
                for t in tables:
                    conn.execute(text(f'ALTER TABLE "{schema}"."{t.name}" SET SCHEMA "{target}"'))
                _positions(conn, names, end)
        except SQLAlchemyError as exc:
            raise storage_error("cannot swap the rebuilt views in", exc, _NOTHING_CHANGED) from exc

    try:
        yield engine, swap
    finally:
        engine.dispose()
        with contextlib.suppress(SQLAlchemyError), live.begin() as conn:  # (a lost server: the next one drops it)
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _drop_left_over(conn: Connection) -> None:
    """Scratch schemas of rebuilds that were killed (their tables hold views data: nothing is left lying)."""
    found = conn.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": SCRATCH_PREFIX.replace("_", r"\_") + "%"}
    ).scalars()
    for name in list(found):
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _positions(conn: Connection, names: Sequence[str], end: int) -> None:
    upsert(conn, tracking, [{"name": n, "position": end} for n in names], ["name"])
