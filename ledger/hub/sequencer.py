"""The hub's sequence: one durable, monotonic counter per hub log, advanced by one writer at a time.

Every provision record and flag change the hub takes gets the next number (``ledger.linkage.hiding`` decides
the portal's hiding by it, never by a clock). Two hub processes numbering at once would hand out one number
twice or interleave them, so only the holder of the **leader lease** sequences:

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on the lease's own connection, and
  every append runs on that connection, checking in its transaction that the session still holds the lock. A
  leader whose session dies (crash, network cut, ``pg_terminate_backend``) loses the lock with it, and a standby
  gets it.
* **SQLite**: an exclusive ``flock`` on ``<database>.lease`` next to the database file (one host: the only way
  SQLite is shared), released by the kernel when the process dies however it dies.
* **Fencing, both**: taking the lease raises the epoch in ``hub_sequence``; an append advances the counter only
  where the epoch is still its own (one ``UPDATE … WHERE epoch = mine``). A deposed leader that never noticed
  — its lock lost, its process paused — matches no row and is refused (``not_leader``), so the sequence never
  forks.

**One poll, one transaction** (:meth:`Sequencer.poll`): the hub's loop applies a poll's messages in one
transaction on the sequencer's session, fenced once at its start (the advisory lock checked, the epoch row
updated and so locked until the commit), the counter kept in memory and written once at the end; each append
in it is a SAVEPOINT (``ledger.hub.txn``). The numbers are those one-by-one appends would have handed out, in
the same order and gap-free: an append rolled back to its savepoint takes none.

A standby that cannot get the lease refuses to sequence (``not_leader``) and may wait for it
(:meth:`Sequencer.take_lease` with ``wait``): the takeover of the issue's active/standby hub.
"""

from __future__ import annotations

import fcntl
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, ConfigurationError, StateConflict, StorageError
from ledger.hub import txn
from ledger.hub.tables import hub_sequence
from ledger.storage import storage_error

__all__ = ["LEASE_LOCK", "NotLeader", "Sequencer"]

LEASE_LOCK = 0x666C6862  # the first half of the lease's advisory lock key on PostgreSQL ("flhb")


class NotLeader(StateConflict):
    """This hub process does not hold the leader lease (a standby, or a leader deposed): nothing sequenced."""

    code = Code.NOT_LEADER


class Sequencer:
    """The sequence of one hub log in ``engine``'s database, for the process named ``who`` (host, pid: for the
    operator, recorded with the epoch). Used from one thread: on PostgreSQL every append shares the lease's
    one session."""

    def __init__(self, engine: Engine, who: str, *, log: str = "hub", lease_file: Path | None = None) -> None:
        self.engine = engine
        self.who = who
        self.log = log
        self.pg = engine.dialect.name == "postgresql"
        self._key = zlib.crc32(log.encode()) & 0x7FFFFFFF
        self._conn: Connection | None = None  # PostgreSQL: the session that holds the advisory lock
        self._fd: int | None = None  # SQLite: the open lease file holding the flock
        self.epoch: int | None = None
        self.lease_file: Path | None = None  # SQLite's lease; PostgreSQL's is the lock
        self._last: int | None = None  # in a poll: the last number handed out, written at its commit
        if not self.pg:
            database = engine.url.database
            if lease_file is None and database in (None, "", ":memory:"):
                raise ConfigurationError("a hub on an in-memory SQLite database needs an explicit lease file")
            self.lease_file = lease_file or Path(f"{database}.lease")

    # -- the lease ----------------------------------------------------------------------------------------
    @property
    def leader(self) -> bool:
        return self.epoch is not None

    def take_lease(self, wait: float = 0.0, every: float = 0.1) -> int:
        """Become the leader (returns the new epoch), waiting up to ``wait`` seconds for the one that holds it
        to let go or die; ``not_leader`` if it still holds it then."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._try_lease()
            except NotLeader:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(every)

    def _try_lease(self) -> int:
        if self.epoch is not None:
            return self.epoch
        try:
            self._lock()
            with self._session() as conn, conn.begin():
                self.epoch = self._raise_epoch(conn)
        except SQLAlchemyError as exc:
            self.release()
            raise storage_error("cannot take the hub's leader lease", exc) from exc
        return self.epoch

    def _lock(self) -> None:
        if self.pg:
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": LEASE_LOCK, "b": self._key})
            held = bool(got.scalar())
            conn.commit()
            if not held:
                conn.close()
                raise NotLeader("another hub process holds the leader lease: this one is a standby")
            self._conn = conn
            return
        assert self.lease_file is not None
        fd = os.open(self.lease_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NotLeader(
                f"another hub process holds the leader lease ({self.lease_file}): this one is a standby"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.who}\n".encode())
        self._fd = fd

    def _raise_epoch(self, conn: Connection) -> int:
        s = hub_sequence.c
        row = conn.execute(select(s.epoch).where(s.log == self.log).with_for_update()).first()
        if row is None:
            conn.execute(insert(hub_sequence).values(log=self.log, last=0, epoch=1, leader=self.who))
            return 1
        epoch = int(row.epoch) + 1
        conn.execute(update(hub_sequence).where(s.log == self.log).values(epoch=epoch, leader=self.who))
        return epoch

    @contextmanager
    def _session(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn  # the lease's own session, kept open: closing it would drop the lock
            return
        with self.engine.connect() as conn:
            yield conn

    def release(self) -> None:
        """Let go of the lease (a standby may take it); nothing is sequenced here after this."""
        self.epoch = None
        if self._conn is not None:
            # the session ends — not back to the pool, where it would keep the lock for whoever takes it next —
            # and PostgreSQL drops its advisory locks (if the session is already gone, so is its lock)
            with suppress(SQLAlchemyError):
                # unlock first: a closed session's backend exits, and drops its locks, only some time later, so
                # a standby asking at once would find the lease still held
                self._conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": LEASE_LOCK, "b": self._key})
                self._conn.commit()
            with suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # the flock goes with the last descriptor
            self._fd = None

    close = release

    # -- sequencing ---------------------------------------------------------------------------------------
    def append(
        self,
        existing: Callable[[Connection], int | None],
        write: Callable[[Connection, int], object],
        *,
        held: bool = False,
    ) -> int:
        """Write one sequenced item: ``write(conn, seq)`` with the next number, in the transaction that advances
        the counter — unless ``existing(conn)`` finds it already written (a redelivered message), whose number
        is returned and nothing is advanced. ``not_leader`` unless this process holds the lease. ``held``: in a
        poll, ``write`` only holds its rows for the commit and ``existing`` only reads, so no SAVEPOINT is
        taken (``ledger.hub.txn.held``)."""
        if self.epoch is None:
            raise NotLeader("this hub process does not hold the leader lease: it does not sequence")
        if (poll := txn.current(self.engine)) is not None and self._last is not None:
            return self._append_in(poll, existing, write, held)
        try:
            with self._session() as conn, conn.begin() as tx:
                self._fence(conn)
                if (found := existing(conn)) is not None:
                    tx.rollback()
                    return found
                seq = int(conn.execute(select(hub_sequence.c.last).where(hub_sequence.c.log == self.log)).scalar_one())
                write(conn, seq)
                return seq
        except NotLeader:
            self.release()
            raise
        except SQLAlchemyError as exc:
            if self._conn is not None and self._conn.invalidated:
                self.release()  # the session is gone, and the lock with it: a standby may be sequencing
                raise NotLeader("the hub lost its leader lease with its database session") from exc
            raise storage_error("cannot sequence at the hub", exc, "nothing was kept") from exc

    def _append_in(
        self,
        poll: txn.Poll,
        existing: Callable[[Connection], int | None],
        write: Callable[[Connection, int], object],
        held: bool,
    ) -> int:
        """An append inside the open poll: its own SAVEPOINT (or, ``held``, none), the next number taken only if
        it is released."""
        assert self._last is not None
        unit = txn.held if held else txn.savepoint
        try:
            with unit(self.engine) as conn:
                if (found := existing(conn)) is not None:
                    return found
                seq = self._last + 1
                write(conn, seq)
        except SQLAlchemyError as exc:
            raise storage_error("cannot sequence at the hub", exc, "nothing of this poll was kept") from exc
        self._last = seq
        return seq

    @contextmanager
    def poll(self) -> Iterator[txn.Poll]:
        """One transaction for a poll of the hub's loop: fenced once here, every append, code-map write and park
        inside it a SAVEPOINT, the counter written and everything committed when the block ends — or nothing,
        if it raises. ``not_leader`` unless this process holds the lease (checked again at the commit)."""
        if self.epoch is None:
            raise NotLeader("this hub process does not hold the leader lease: it does not sequence")
        s = hub_sequence.c
        committed: list[Callable[[], None]] = []
        try:
            with self._session() as conn, conn.begin():
                self._fence(conn, by=0)  # the lease checked; the epoch row locked until the commit
                self._last = int(conn.execute(select(s.last).where(s.log == self.log)).scalar_one())
                first = self._last
                try:
                    with txn.bind(self.engine, conn) as poll:
                        committed = poll.committed
                        yield poll
                        poll.flush()
                    if self._last != first:
                        advanced = conn.execute(
                            update(hub_sequence)
                            .where((s.log == self.log) & (s.epoch == self.epoch))
                            .values(last=self._last)
                        )
                        if advanced.rowcount != 1:
                            raise NotLeader("another hub process took the leader lease since: this one was deposed")
                finally:
                    self._last = None
        except NotLeader:
            self.release()
            raise
        except (SQLAlchemyError, StorageError) as exc:
            if self._conn is not None and self._conn.invalidated:
                self.release()  # the session is gone, and the lock with it: a standby may be sequencing
                raise NotLeader("the hub lost its leader lease with its database session") from exc
            if isinstance(exc, StorageError):
                raise
            raise storage_error("cannot commit the hub's poll", exc, "nothing of it was kept") from exc
        for then in committed:  # committed: what waited for it (``txn.after_commit``)
            then()

    def _fence(self, conn: Connection, by: int = 1) -> None:
        if self.pg:
            held = conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND classid = CAST(:a AS oid) AND objid = CAST(:b AS oid) "
                    "AND objsubid = 2)"
                ),
                {"a": LEASE_LOCK, "b": self._key},
            ).scalar()
            if not held:
                raise NotLeader("the hub's database session no longer holds the leader lease")
        s = hub_sequence.c
        advanced = conn.execute(
            update(hub_sequence).where((s.log == self.log) & (s.epoch == self.epoch)).values(last=s.last + by)
        )
        if advanced.rowcount != 1:
            raise NotLeader("another hub process took the leader lease since: this one was deposed")

    def current(self) -> int:
        """The last number handed out as this process sees it: in a poll, the poll's (not yet committed, and
        whatever carries it is committed with it or not at all); else :meth:`last`."""
        return self._last if self._last is not None else self.last()

    def last(self) -> int:
        """The last number handed out (0: none yet); readable by a standby too."""
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(hub_sequence.c.last).where(hub_sequence.c.log == self.log)).scalar()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's sequence", exc) from exc
        return int(found or 0)
