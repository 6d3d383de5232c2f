"""The poll's one transaction: every read and write the hub's loop makes while applying a poll shares it.

The loop applies a poll's messages in one database transaction (``Sequencer.poll``), fenced once. What used
to be its own transaction — a sequenced append, a code-map write, a park — is a SAVEPOINT in it, so a
message refused half-way is rolled back to where it started and parked, and the poll goes on: the database
holds what one-by-one application would have committed, all of it or (a crash, a lost lease) none.

The code that applies a message opens its connections through :func:`reading` and :func:`savepoint`: on the
loop's thread, while a poll is open on that engine, they hand out the poll's connection, so a message sees
what the messages before it in the poll wrote; on any other thread (the API, the portal's feed) and outside a
poll they open their own, as before. Thread-local: the poll's connection never serves another thread.

The poll also keeps what makes the per-message reads cheap: the (sender, event id)s found applied or not by
one ``IN`` query for the whole poll (``known``) plus those marked applied since (``marked``), the provision
record ids filed before or in the poll (``records``, read the same way), and the code map's answers
(``codes``), dropped at every code-map write.

A unit whose writes are all held for the commit (:meth:`Poll.later`, :meth:`Poll.mark`, :meth:`Poll.file`) —
a sealed provision record, the most common message — needs no SAVEPOINT (:func:`held`): if it raises, what it
held is dropped, and nothing else was written. It is checked: a write run on the poll's connection inside
a held unit that then fails stops the poll (``StorageError``, nothing of it committed) instead of keeping half
of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event

from ledger.errors import StorageError

__all__ = ["Poll", "after_commit", "bind", "current", "held", "reading", "savepoint"]

Key = tuple[str, str]  # (sender, event id)


@dataclass
class Poll:
    """The open poll transaction of one engine on this thread."""

    engine: Engine
    conn: Connection
    known: dict[Key, int | None] = field(default_factory=dict)  # the poll's ids read at its start: seq or None
    marked: dict[Key, int] = field(default_factory=dict)  # marked applied in this poll (savepoints released)
    records: dict[str, int | None] = field(default_factory=dict)  # record id → the seq it was filed at, or None
    codes: dict[tuple[str, ...], object] = field(default_factory=dict)  # the code map's answers in this poll
    _pending: list[Key] = field(default_factory=list)  # marked inside savepoints still open
    _filed: list[str] = field(default_factory=list)  # record ids filed inside units still open
    _later: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)  # inserts sent at the commit
    _savepoints: int = 0
    statements: int = 0  # writes run on the poll's connection so far (the check of held units)
    committed: list[Callable[[], None]] = field(default_factory=list)  # run once the poll has committed

    def applied(self, key: Key) -> tuple[bool, int | None]:
        """(known, seq): whether this poll can say if ``key`` was applied without asking, and its number."""
        if key in self.marked:
            return True, self.marked[key]
        if key in self.known:
            return True, self.known[key]
        return False, None

    def mark(self, key: Key, seq: int) -> None:
        self.marked[key] = seq
        self._pending.append(key)

    def file(self, record_id: str, seq: int) -> None:
        """``record_id`` filed at ``seq`` in this poll (its row held for the commit): answers the record-id check
        of the rest of the poll."""
        self.records[record_id] = seq
        self._filed.append(record_id)

    def _drop_since(self, pending: int, filed: int, held: int) -> None:
        """Forget what a unit rolled back had marked, filed and held."""
        for key in self._pending[pending:]:
            self.marked.pop(key, None)
        del self._pending[pending:]
        for record_id in self._filed[filed:]:
            self.records[record_id] = None  # read as not filed at the poll's start, or it would not have been
        del self._filed[filed:]
        del self._later[held:]

    def _count(self, conn: Connection, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":  # a read changes nothing to roll back
            self.statements += 1

    def later(self, stmt: Any, row: dict[str, Any]) -> None:
        """Insert ``row`` with ``stmt`` at the poll's commit, in one ``executemany`` with the poll's other rows of
        the same statement — for rows nothing in the poll reads back by SQL (applied ids: :meth:`applied`;
        the outbox: sent after the commit). Dropped with the savepoint it was asked in, if that is rolled back."""
        self._later.append((stmt, row))

    def flush(self) -> None:
        """Send the inserts held for the commit: one ``executemany`` per statement, each statement's rows in the
        order asked (the outbox's ids are its send order). Across statements the order is free: the tables
        held here (applied ids, outbox, sealed records) refer to none of the others."""
        runs: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
        for stmt, row in self._later:
            runs.setdefault(id(stmt), (stmt, []))[1].append(row)
        for stmt, rows in runs.values():
            self.conn.execute(stmt, rows)
        self._later.clear()


_local = threading.local()


def current(engine: Engine | None = None, conn: Connection | None = None) -> Poll | None:
    """The poll open on this thread, if it is on ``engine`` (or uses ``conn``)."""
    poll: Poll | None = getattr(_local, "poll", None)
    if poll is None:
        return None
    if engine is not None and poll.engine is not engine:
        return None
    if conn is not None and poll.conn is not conn:
        return None
    return poll


@contextmanager
def bind(engine: Engine, conn: Connection) -> Iterator[Poll]:
    """Make ``conn``, in its open transaction, this thread's poll connection for ``engine``."""
    if getattr(_local, "poll", None) is not None:
        raise RuntimeError("a poll transaction is already open on this thread")
    poll = Poll(engine, conn)
    event.listen(conn, "before_cursor_execute", poll._count)
    _local.poll = poll
    try:
        yield poll
    finally:
        _local.poll = None
        event.remove(conn, "before_cursor_execute", poll._count)


def after_commit(engine: Engine, then: Callable[[], None]) -> None:
    """Run ``then`` once what was just written on ``engine`` is committed: at once outside a poll (the write's own
    transaction has committed), else after the poll's commit — never if the poll is rolled back (its messages are
    handed over again and applied anew: a count kept in memory would count them twice)."""
    poll = current(engine)
    if poll is None:
        then()
    else:
        poll.committed.append(then)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection to read with: the poll's on this thread while one is open on ``engine``, else a new one."""
    poll = current(engine)
    if poll is not None:
        yield poll.conn
        return
    with engine.connect() as conn:
        yield conn


@contextmanager
def savepoint(engine: Engine) -> Iterator[Connection]:
    """A unit of writes: a SAVEPOINT in this thread's poll on ``engine`` (rolled back alone if it fails, its
    applied marks forgotten), else a transaction of its own."""
    poll = current(engine)
    if poll is None:
        with engine.begin() as conn:
            yield conn
        return
    since, filed, held = len(poll._pending), len(poll._filed), len(poll._later)
    poll._savepoints += 1
    name = f"hub_poll_{poll._savepoints}"
    conn = poll.conn
    # by name, not begin_nested(): the same SAVEPOINT without building a statement for it each time
    conn.exec_driver_sql(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
        conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
        poll._drop_since(since, filed, held)
        poll.codes.clear()  # a code-map write may be among what was rolled back
        raise
    conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")


@contextmanager
def held(engine: Engine) -> Iterator[Connection]:
    """A unit of writes all held for the poll's commit (module doc): no SAVEPOINT; if it raises, what it held
    is dropped — and if a write ran on the poll's connection inside it, the poll stops (``StorageError``)
    rather than keep a write a SAVEPOINT would have rolled back. Outside a poll: a transaction of its own."""
    poll = current(engine)
    if poll is None:
        with engine.begin() as conn:
            yield conn
        return
    since, filed, later, statements = len(poll._pending), len(poll._filed), len(poll._later), poll.statements
    try:
        yield poll.conn
    except BaseException as exc:
        if poll.statements != statements:
            raise StorageError(
                "a unit held for the hub's poll commit wrote on its connection, then failed: nothing of the poll "
                "is kept"
            ) from exc
        poll._drop_since(since, filed, later)
        raise
