"""The notification log as plain tuples, for the loops that read every event of it (``audit verify``).

The library's ``select_notifications`` turns every row's stored stream id into a ``UUID`` and wraps the row in
a ``Notification``; the audit compares the row with its signed header, which names the stream as
``str(UUID)``, so it turned it straight back (together ~2.5 µs of the ~9 µs a raw read of one event costs,
figure "audit verify of the whole log"). These are the same rows, in the same order, from the same recorder.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, PersistenceError

from ledger.errors import StorageError

__all__ = ["LogRow", "log_rows", "stream_text"]

# position, stream as str(UUID) (None: the stored id is no UUID), the stored id, version, topic, stored state
# (None: the cell holds no byte string)
LogRow = tuple[int, str | None, Any, int, str, bytes | None]

_hex32 = re.compile("[0-9a-f]{32}").fullmatch  # what the SQLite recorder stores (UUID.hex)
_canonical = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def stream_text(stored: Any) -> str | None:
    """``str(UUID(stored))`` as the library's reader would make it (None where that fails), without building
    the UUID for the two forms the recorders write."""
    if type(stored) is str:
        if _hex32(stored):
            return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
        if _canonical(stored):
            return stored
    try:
        return str(UUID(stored))
    except (ValueError, TypeError, AttributeError):
        return None


# a state cell that is not a BLOB (SQLite lets anyone store text or a number there) is read as None, for the
# audit to name; reading text that is not UTF-8 would otherwise fail the whole page, naming no event
_SQLITE_ROWS = (
    "SELECT rowid, originator_id, originator_version, topic, CASE WHEN typeof(state) = 'blob' THEN state END "
    "FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT ?"
)


def log_rows(recorder: ApplicationRecorder, start: int, limit: int, stop: int | None = None) -> list[LogRow]:
    """Up to ``limit`` rows from position ``start`` (inclusive), in log order; none after ``stop`` if given.

    A database that fails while being read (connection lost, server restarted, file unreadable) raises our
    ``StorageError``: nothing was read, so the caller can retry the same page."""
    import sqlite3

    try:
        rows = _rows(recorder, start, limit)
    except (PersistenceError, sqlite3.Error) as exc:
        raise StorageError(f"cannot read the log from position {start}: {exc}") from exc
    if stop is not None and rows and rows[-1][0] > stop:
        return [r for r in rows if r[0] <= stop]
    return rows


def _rows(recorder: ApplicationRecorder, start: int, limit: int) -> list[LogRow]:
    from eventsourcing.postgres import PostgresApplicationRecorder
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    if isinstance(recorder, SQLiteApplicationRecorder) and recorder.datastore.originator_id_type == "uuid":
        with recorder.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None  # plain tuples (the library's connections make sqlite3.Row)
            cursor.execute(_SQLITE_ROWS.format(table=recorder.events_table_name), (start, limit))
            return [
                (position, stream_text(stored), stored, version, topic, state)
                for position, stored, version, topic, state in cursor.fetchall()
            ]
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_rows(recorder, start, limit)
    return [
        (n.id, str(n.originator_id), n.originator_id, n.originator_version, n.topic, n.state)
        for n in recorder.select_notifications(start=start, limit=limit)
    ]


def _postgres_rows(recorder: Any, start: int, limit: int) -> list[LogRow]:
    import psycopg
    from psycopg.sql import SQL, Identifier

    # a uuid column's text is always the canonical str(UUID)
    sql = SQL(
        "SELECT notification_id, originator_id::text AS originator_id, originator_version, topic, state "
        "FROM {schema}.{table} WHERE notification_id>=%s ORDER BY notification_id LIMIT %s"
    ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
    try:
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:  # as the library's own select
            curs.execute(sql, (start, limit), prepare=True)
            rows = curs.fetchall()
    except psycopg.Error as exc:
        raise StorageError(f"cannot read the log from position {start}: {exc}") from exc
    return [
        (
            r["notification_id"],
            r["originator_id"],
            r["originator_id"],
            r["originator_version"],
            r["topic"],
            bytes(r["state"]),
        )
        for r in rows
    ]
