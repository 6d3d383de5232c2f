"""The head (version, hash) and owner of every stream ``audit verify`` has seen, in bounded memory.

One head per stream in a dict grows with the number of streams (~300 B each: 10M two-event provision
streams would need ~1.5 GB), against a flat ≤ 300 MB target (figure "peak memory during a 10M-event audit").
The most recently used heads stay in memory; the least recently used are spilled, a quarter of the capacity
at a time, to a private temporary SQLite database (``sqlite3.connect("")``: on disk, deleted on close). A
spilled head is read back exactly as it was stored, so the chain check is the same whatever was spilled.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from types import TracebackType

__all__ = ["DEFAULT_CAPACITY", "StreamHeads"]

DEFAULT_CAPACITY = 100_000  # ~30 MB of heads in memory before any spill


class StreamHeads:
    """stream → (version, hash hex) of its last verified event, its owner (the signer of its v1) and its aggregate
    (see :mod:`ledger.domain.authority`); ``None`` for a stream not seen yet."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("the heads cache needs room for at least one stream")
        self.capacity = capacity
        self.streams = 0  # distinct streams seen
        self.spilled = 0  # heads written to the temporary database (counting rewrites)
        self._hot: OrderedDict[str, tuple[int, str, str, str]] = OrderedDict()
        self._db: sqlite3.Connection | None = None

    def get(self, stream: str) -> tuple[int, str, str, str] | None:
        head = self._hot.get(stream)
        if head is not None:
            self._hot.move_to_end(stream)
            return head
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT version, hash, owner, aggregate FROM heads WHERE stream = ?", (stream,)
        ).fetchone()
        return (int(row[0]), str(row[1]), str(row[2]), str(row[3])) if row is not None else None

    def set(self, stream: str, version: int, hash_hex: str, *, new: bool, owner: str = "", aggregate: str = "") -> None:
        """Record the stream's new head, after ``get`` of it; ``new``: ``get`` found none (counts the stream).

        ``get`` made a cached head the most recent; a head not cached goes in as the most recent, so the
        order needs no move here (one per event of ``audit verify``).
        """
        if new:
            self.streams += 1
        hot = self._hot
        hot[stream] = (version, hash_hex, owner, aggregate)
        if len(hot) > self.capacity:
            self._spill(max(1, self.capacity // 4))

    def _spill(self, count: int) -> None:
        if self._db is None:
            self._db = sqlite3.connect("", isolation_level=None)
            self._db.execute("PRAGMA journal_mode = OFF")  # a scratch table: nothing to recover after a crash
            self._db.execute(
                "CREATE TABLE heads (stream TEXT PRIMARY KEY, version INTEGER NOT NULL, hash TEXT NOT NULL,"
                " owner TEXT NOT NULL, aggregate TEXT NOT NULL) WITHOUT ROWID"
            )
        out = [(s, v, h, o, a) for s, (v, h, o, a) in (self._hot.popitem(last=False) for _ in range(count))]
        # a head read back from the table and advanced since is newer than the table's copy: replace it
        self._db.executemany(
            "INSERT OR REPLACE INTO heads (stream, version, hash, owner, aggregate) VALUES (?, ?, ?, ?, ?)", out
        )
        self.spilled += len(out)

    def close(self) -> None:
        self._hot.clear()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> StreamHeads:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
