"""An insider's hands on the event table (SQLite or PostgreSQL): delete, move, swap rows, cut the tail, rewrite the
log head row to match — and put everything back, so one log serves many attacks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.merkle import CompactRange
from ledger.runtime.bootstrap import Node


@dataclass(frozen=True)
class Row:
    position: int
    stream: str  # as the table holds it (SQLite: 32 hex digits; PostgreSQL: canonical text)
    version: int
    topic: str
    state: bytes


class RawLog:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.pg = bool(node.config.database_url)
        self.events = "flagledger_events" if self.pg else "stored_events"
        self.head = f"{self.events}_head"
        self.pos = "notification_id" if self.pg else "rowid"

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        if self.pg:
            assert self.node.config.database_url is not None
            with psycopg.connect(self.node.config.database_url) as pg:
                yield pg
        else:
            lite = sqlite3.connect(self.node.config.data_dir / "ledger.sqlite")
            try:
                with lite:
                    yield lite
            finally:
                lite.close()

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    # -- keeping a copy ------------------------------------------------------------------------------------
    def snapshot(self) -> None:
        with self._conn() as c:
            for t in ("pristine_events", "pristine_head"):
                c.execute(f"DROP TABLE IF EXISTS {t}")
            c.execute(
                f"CREATE TABLE pristine_events AS SELECT {self.pos} AS pos, originator_id, originator_version, "
                f"topic, state FROM {self.events}"
            )
            c.execute(f"CREATE TABLE pristine_head AS SELECT * FROM {self.head}")

    def restore(self) -> None:
        with self._conn() as c:
            c.execute(f"DELETE FROM {self.events}")
            c.execute(
                f"INSERT INTO {self.events} ({self.pos}, originator_id, originator_version, topic, state) "
                "SELECT pos, originator_id, originator_version, topic, state FROM pristine_events"
            )
            c.execute(f"DELETE FROM {self.head}")
            c.execute(f"INSERT INTO {self.head} SELECT * FROM pristine_head")

    # -- reading -----------------------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        with self._conn() as c:
            got = c.execute(
                f"SELECT {self.pos}, originator_id, originator_version, topic, state FROM {self.events} "
                f"ORDER BY {self.pos}"
            ).fetchall()
        return [Row(int(p), str(s), int(v), str(t), bytes(st)) for p, s, v, t, st in got]

    # -- attacks -----------------------------------------------------------------------------------------
    def delete(self, positions: Sequence[int]) -> None:
        with self._conn() as c:
            for p in positions:
                c.execute(self._q(f"DELETE FROM {self.events} WHERE {self.pos} = ?"), (p,))

    def restream(self, position: int, stream: str, version: int) -> None:
        """Move a row into another stream (its columns now claim that stream, at ``version``)."""
        with self._conn() as c:
            c.execute(
                self._q(f"UPDATE {self.events} SET originator_id = ?, originator_version = ? WHERE {self.pos} = ?"),
                (stream, version, position),
            )

    def swap(self, p: int, q: int) -> None:
        """The two rows trade places in the log's order."""
        rows = {r.position: r for r in self.rows() if r.position in (p, q)}
        self.delete([p, q])
        with self._conn() as c:
            for here, there in ((p, q), (q, p)):
                r = rows[there]
                c.execute(
                    self._q(
                        f"INSERT INTO {self.events} ({self.pos}, originator_id, originator_version, topic, "
                        "state) VALUES (?, ?, ?, ?, ?)"
                    ),
                    (here, r.stream, r.version, r.topic, r.state),
                )

    def move_to_end(self, position: int) -> int:
        """The row deleted and inserted again after the last one; returns its new position."""
        r = next(r for r in self.rows() if r.position == position)
        end = max(x.position for x in self.rows()) + 1
        self.delete([position])
        with self._conn() as c:
            c.execute(
                self._q(
                    f"INSERT INTO {self.events} ({self.pos}, originator_id, originator_version, topic, "
                    "state) VALUES (?, ?, ?, ?, ?)"
                ),
                (end, r.stream, r.version, r.topic, r.state),
            )
        return end

    def forge_head(self) -> None:
        """Rewrite the head row to match the rows as they are: hashes of signed headers, no key needed."""
        open_ = self.node.app.signed_mapper.open
        tree = CompactRange(open_(r.state).leaf_hash for r in self.rows())
        with self._conn() as c:
            c.execute(f"DELETE FROM {self.head}")
            c.execute(
                self._q(f"INSERT INTO {self.head} (id, size, root, frontier) VALUES (1, ?, ?, ?)"),
                (tree.size, tree.root(), b"".join(tree.frontier())),
            )

    def set_state(self, position: int, state: bytes) -> None:
        with self._conn() as c:
            c.execute(self._q(f"UPDATE {self.events} SET state = ? WHERE {self.pos} = ?"), (state, position))

    def insert(self, stream: str, version: int, topic: str, state: bytes) -> int:
        """A row appended after the last one (no log head advanced: the insider writes the table directly)."""
        end = max((r.position for r in self.rows()), default=0) + 1
        with self._conn() as c:
            c.execute(
                self._q(
                    f"INSERT INTO {self.events} ({self.pos}, originator_id, originator_version, topic, "
                    "state) VALUES (?, ?, ?, ?, ?)"
                ),
                (end, stream, version, topic, state),
            )
        return end

    def drop_head(self) -> None:
        with self._conn() as c:
            c.execute(f"DELETE FROM {self.head}")
