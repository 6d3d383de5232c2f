"""The SQLite application recorder, advancing the log head (:mod:`ledger.log.head`) in every insert transaction.

The library's recorder inserts a batch in one ``BEGIN`` … ``COMMIT``; SQLite lets one writer at a time hold
the database. Here the transaction's *first* statement is a write to the head row (``UPDATE … RETURNING``):
in WAL mode a deferred transaction that starts by writing waits (busy timeout) for the write lock and then
reads the latest committed head, so two processes saving at once take turns and each batch signs the log
exactly as it stood before it. Everything else — the table, the rowid positions, the returned ids — is the
library's.
"""

# eventsourcing internals used (issue #17; the library is pinned at 9.5.6 in pyproject.toml):
#   none private. This class overrides the public ``insert_events`` and ``select_notifications`` and reads the
#   public attributes ``datastore``, ``events_table_name``, ``insert_events_statement``,
#   ``select_events_statement``, ``create_table_statements`` and ``convert_originator_id``. Until issue #17 it
#   overrode the private ``_insert_events`` and called ``super()._insert_events``; the rows are now inserted
#   here with the library's own statement. tests/integration/test_recorder_contract.py runs the library's
#   recorder test cases against this class, so an upgrade that changes any of the above fails there first.
# Elsewhere (listed, not changed here): ledger/app/__init__.py ``FlagLedger.save`` calls ``Application._record``,
#   ``_take_snapshots`` and ``_notify`` (the library's ``save`` without its per-object Protocol checks);
#   ledger/log/pg_recorder.py overrides ``_insert_stored_events`` to refuse it (see there).

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from ledger.log.head import LogHead, head_missing, plain_leaf, rows_to_insert

__all__ = ["TOPIC", "LogHeadSQLiteRecorder"]

TOPIC = "ledger.log.sqlite_recorder:LogHeadSQLiteRecorder"


class LogHeadSQLiteRecorder(SQLiteApplicationRecorder):
    seals_batches = True  # SignedEventStore.put hands it pending batches (keyword ``batch``)

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self.head_table = f"{events_table_name}_head"
        self.create_table_statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.head_table} (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "size INTEGER NOT NULL, root BLOB NOT NULL, frontier BLOB NOT NULL)"
        )
        self.leaf_of: Callable[[bytes], bytes] = plain_leaf
        # the state cell as bytes whatever its type (see select_notifications)
        self.select_events_statement = (
            "SELECT originator_id, originator_version, topic, CAST(state AS BLOB) AS state "
            f"FROM {self.events_table_name} WHERE originator_id=? "
        )

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's query, with the state cell read as bytes whatever its type: SQLite lets anyone store
        text there, and text that is not UTF-8 would fail the whole page (``audit verify`` names such a cell:
        :mod:`ledger.log.rows`)."""
        where: list[str] = []
        params: list[int | str] = []
        if start is not None:
            where.append("rowid>=?" if inclusive_of_start else "rowid>?")
            params.append(start)
        if stop is not None:
            where.append("rowid<=?")
            params.append(stop)
        if topics:
            where.append(f"topic IN ({','.join('?' * len(topics))})")
            params.extend(topics)
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic, CAST(state AS BLOB) AS state "
            f"FROM {self.events_table_name} {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY rowid LIMIT ?"
        )
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            return [
                Notification(
                    id=row["rowid"],
                    originator_id=self.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            ]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert (one ``BEGIN`` … ``COMMIT``, a row per event, the rowids returned), preceded
        by the head row's write lock and followed by the advanced head, in the same transaction."""
        with self.datastore.transaction(commit=True) as c:
            # first a write: the transaction holds the write lock from here (see the module's docstring)
            c.execute(f"UPDATE {self.head_table} SET id = id WHERE id = 1 RETURNING size, root, frontier")
            row = c.fetchone()
            if row is not None:
                head = LogHead.from_row(row[0], row[1], row[2])
            else:
                c.execute(f"SELECT EXISTS (SELECT 1 FROM {self.events_table_name})")
                if c.fetchone()[0]:
                    raise head_missing()
                head = LogHead.empty()
            rows, after = rows_to_insert(head, stored_events, kwargs, self.leaf_of)
            ids: list[int] = []
            for e in rows:
                oid = e.originator_id
                c.execute(
                    self.insert_events_statement,
                    (oid.hex if isinstance(oid, UUID) else oid, e.originator_version, e.topic, e.state),
                )
                ids.append(c.lastrowid)
            write = (
                "UPDATE {t} SET size = ?, root = ?, frontier = ? WHERE id = 1"
                if row is not None
                else ("INSERT INTO {t} (size, root, frontier, id) VALUES (?, ?, ?, 1)")
            )
            c.execute(write.format(t=self.head_table), (after.size, after.root, after.frontier_bytes()))
        return ids

    def read_head(self) -> LogHead | None:
        """The head row as committed now (None: there is none), checked for agreement with itself."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT size, root, frontier FROM {self.head_table} WHERE id = 1")
            row = c.fetchone()
        return None if row is None else LogHead.from_row(row[0], row[1], row[2])
