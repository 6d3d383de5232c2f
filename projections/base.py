"""Projection machinery: follow the log, apply events, commit rows and position together.

Each projection's rows and its tracking position are written in the same transaction, so a crash
between them is impossible: a restart resumes exactly after the last committed position, and a
rebuild from position 0 produces the same rows as incremental processing.

Several processes may catch up one database at once (the ``node`` process, a staff command, the API). On
PostgreSQL each page is applied under a transaction-scoped advisory lock and the positions are re-read
inside it, so a page another process applied meanwhile is skipped, not applied twice.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, select, text
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import FlagLedger
from ledger.errors import IntegrityError
from ledger.faultpoint import ENV as FAULTPOINT_ENV
from ledger.faultpoint import faultpoint
from ledger.log.envelope import Envelope
from ledger.log.rows import LogRow, log_rows
from ledger.log.subject_payload import ErasedPayload
from ledger.log.view_cipher import ViewCipher
from ledger.storage import create_engine, storage_error, upsert
from projections.page import PageWriter
from projections.schema import fingerprint, projection_schema, state_metadata, tracking

__all__ = [
    "BatchedProjection",
    "PageWriter",
    "Projection",
    "Projector",
    "bulk_writes",
    "create_engine",
    "metadata",
    "state_metadata",
    "storage_error",
    "tracking",
    "upsert",
]

log = logging.getLogger("flagledger.projections")

metadata = MetaData()  # the projection tables: rebuildable from the log (their bookkeeping: projections.schema)

Progress = Callable[[int, int], None]
# topic → (projection name, apply or handle, batched?) of the projections reading it
Readers = dict[str, list[tuple[str, Callable[[Any, Any, Envelope, int], None], bool]]]
PROJECTOR_LOCK = 0x666C6167  # the advisory lock key of projection writers on PostgreSQL ("flag")


CIPHER_INFO = "flagledger.view_cipher"  # key of the projector's ViewCipher in a page's ``Connection.info``


class Projection(ABC):
    """A read model. ``topics`` lists the event topics it reads (all others are skipped unread)."""

    name: str
    tables: Sequence[Table]
    topics: frozenset[str]
    # raised when what the rows mean changes while the tables stay as they were: the projection is rebuilt
    schema_version: int = 1
    # the secondary indexes its own handlers read through: a bulk rebuild (projections.bulk) creates these
    # before applying the log and every other one after it (a read without its index would scan the table)
    build_indexes: frozenset[str] = frozenset()

    @abstractmethod
    def handle(self, conn: Connection, event: Any, env: Envelope, position: int) -> None: ...


class BatchedProjection(Projection):
    """A projection whose writes go through the page's :class:`PageWriter` (one executemany per shape)."""

    @abstractmethod
    def apply(self, w: PageWriter, event: Any, env: Envelope, position: int) -> None: ...

    def handle(self, conn: Connection, event: Any, env: Envelope, position: int) -> None:
        # the projector's cipher, set on the page's connection: a wrapper calling ``handle`` seals the same
        w = PageWriter(conn, conn.info.get(CIPHER_INFO))
        self.apply(w, event, env, position)
        w.flush()


class Projector:
    def __init__(self, app: FlagLedger, engine: Engine, projections: Iterable[Projection], page: int = 1000):
        self.app = app
        self.engine = engine
        self.projections = list(projections)
        self.page = page
        self.by_name = {p.name: p for p in self.projections}
        # the request path catches up before each decision while a consumer loop catches up after each
        # poll: two catch-ups at once in one process would both apply the page after the same position
        self._threads = threading.RLock()  # one catch-up at a time within this process
        self._cipher: ViewCipher | None = None

    @property
    def cipher(self) -> ViewCipher:
        """Seals the views' personal cells under this node's data keys (set on the app after it is made)."""
        keys = self.app.signed_mapper.data_keys
        if self._cipher is None or self._cipher.data_keys is not keys:
            self._cipher = ViewCipher(keys)
        return self._cipher

    def create_tables(self) -> list[str]:
        """Every missing table, as they are now, none recreated (returns no name): for a scratch database of its
        own (a replay, ``audit views``) and for ``audit verify``, which changes no view."""
        try:
            state_metadata.create_all(self.engine)
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise storage_error("cannot create projection tables", exc) from exc
        return []

    def fingerprints(self) -> dict[str, str]:
        dialect = self.engine.dialect
        # (a wrapper that only delegates name, tables and topics, as a test's slowed projection, is version 1)
        return {
            p.name: fingerprint(p.name, getattr(p, "schema_version", 1), p.tables, dialect) for p in self.projections
        }

    def sync_schema(self) -> list[str]:
        """Drop and recreate the tables of every projection whose fingerprint (``projections.schema``) is not
        the stored one — a definition changed, or the database predates fingerprints — and forget its
        position, so the next catch-up rebuilds it from the log; the others are left untouched. Returns the
        names of those recreated. The bookkeeping tables must exist (``ledger.runtime.migrations.upgrade``)."""
        wanted = self.fingerprints()
        mine = {t for p in self.projections for t in p.tables}
        try:
            # tables of projections this projector does not maintain (a node opened with a few of them)
            if others := [t for t in metadata.sorted_tables if t not in mine]:
                metadata.create_all(self.engine, tables=others)
            with self.engine.connect() as conn:  # the usual open: nothing changed, nothing locked
                if self._stale(conn, wanted) == []:
                    return []
            with self.engine.begin() as conn:
                self._lock(conn)
                stale = self._stale(conn, wanted)  # again, under the lock: another process may have done it
                for p in stale:
                    for table in reversed(p.tables):
                        table.drop(conn, checkfirst=True)
                    for table in p.tables:
                        table.create(conn)
                    conn.execute(tracking.delete().where(tracking.c.name == p.name))
                upsert(
                    conn, projection_schema, [{"name": p.name, "fingerprint": wanted[p.name]} for p in stale], ["name"]
                )
        except SQLAlchemyError as exc:
            raise storage_error("cannot recreate the projection tables whose definition changed", exc) from exc
        return [p.name for p in stale]

    def _stale(self, conn: Connection, wanted: dict[str, str]) -> list[Projection]:
        stored = {
            str(n): str(f) for n, f in conn.execute(select(projection_schema.c.name, projection_schema.c.fingerprint))
        }
        return [p for p in self.projections if stored.get(p.name) != wanted[p.name]]

    def rebuild_stale(self, names: Sequence[str]) -> int:
        """Catch up after :meth:`sync_schema` recreated ``names``, logging the progress (a long log takes a
        while); the projections left untouched skip what they already hold."""
        if not names:
            return 0
        if end := self.app.max_position():
            log.info(
                "projections %s are new or their definition changed: rebuilding them from the %d events of the log",
                ", ".join(names),
                end,
            )
        last = [0.0]

        def logged(position: int, end: int) -> None:
            if time.monotonic() - last[0] >= 5 or position >= end:
                last[0] = time.monotonic()
                log.info("rebuilding %s: %d/%d", ", ".join(names), position, end)

        with self._threads, self.engine.connect() as conn, bulk_writes(conn):
            return self._catch_up(conn, logged, None)

    def positions(self) -> dict[str, int]:
        try:
            with self.engine.connect() as conn:
                return self._positions(conn)
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the projections' positions", exc) from exc

    def _positions(self, conn: Connection) -> dict[str, int]:
        result = conn.execute(select(tracking.c.name, tracking.c.position))
        rows: dict[str, int] = {str(name): int(pos) for name, pos in result}
        return {p.name: int(rows.get(p.name, 0)) for p in self.projections}

    @staticmethod
    def _lock(conn: Connection) -> None:
        """Serialise projection writers of one database until the end of ``conn``'s transaction."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PROJECTOR_LOCK})
        else:  # SQLite: a write as the transaction's first statement takes the database's write lock
            conn.execute(tracking.update().where(tracking.c.name == "").values(position=0))

    def catch_up(self, progress: Progress | None = None, stop: int | None = None) -> int:
        """Apply every event after each projection's position; returns the events applied."""
        # the usual call (a read, with nothing logged since the last one) finds every projection at the log's
        # end: it answers without queueing behind another thread's catch-up. The end is read first, so
        # whatever this caller wrote before asking is at or before it.
        end = stop if stop is not None else self.app.max_position()
        if min(self.positions().values(), default=0) >= end:
            return 0
        with self._threads, self.engine.connect() as conn:
            return self._catch_up(conn, progress, stop)

    def _catch_up(self, conn: Connection, progress: Progress | None, stop: int | None) -> int:
        try:  # on the one connection this catch-up holds (a one-shot command's pool has two at most)
            positions = self._positions(conn)
            conn.rollback()  # the read began a transaction; each page below runs in its own
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the projections' positions", exc) from exc
        start = min(positions.values(), default=0) + 1
        applied = 0
        end = stop if stop is not None else self.app.max_position()
        readers = self._readers()
        while start <= end:
            # plain tuples, as `audit verify` reads (ledger/log/rows.py): the same rows without a Notification
            # and a UUID made per row and turned back into text to compare with the header (figure "rebuild")
            rows = log_rows(self.app.recorder, start, self.page, stop=end)
            if not rows:
                break
            try:
                with conn.begin():
                    applied += self._apply_page(conn, rows, readers)
            except SQLAlchemyError as exc:
                raise storage_error(
                    f"projection update failed at position {rows[0][0]}",
                    exc,
                    "nothing of this page was kept — fix the database and run `flagledger projections rebuild` "
                    "or restart the node",
                ) from exc
            if progress is not None:
                progress(rows[-1][0], end)
            start = rows[-1][0] + 1
        return applied

    def _apply_page(self, conn: Connection, rows: Sequence[LogRow], readers: Readers) -> int:
        """One page in the open transaction of ``conn``: the events, then every projection's position."""
        mapper = self.app.signed_mapper
        open_, check_fields, verify, decode = mapper.open, mapper.check_fields, mapper.verify, mapper.decode
        armed = bool(os.environ.get(FAULTPOINT_ENV))  # the fault seam, looked up once a page
        # another process of this node (the `node` loop, a CLI command, a rebuild) may have projected these
        # events since we looked: lock, then re-read where each projection is
        self._lock(conn)
        positions = self._positions(conn)
        # the usual case (a rebuild, a catch-up of projections that move together): every projection is
        # behind the whole page, so no event needs its position compared
        behind_all = max(positions.values(), default=0) < rows[0][0]
        applied = 0
        w = PageWriter(conn, self.cipher)
        conn.info[CIPHER_INFO] = w.cipher
        page: list[tuple[int, Any, Envelope, Any]] = []
        for position, row_stream, _, version, topic, state in rows:
            wanted = readers.get(topic)
            if wanted is None:
                continue
            if state is None:  # a cell holding no byte string (ledger.log.rows): `audit verify` names it
                raise IntegrityError(f"the stored event at position {position} is not a byte string")
            env = open_(state)
            check_fields(env, row_stream, version, topic)
            verify(env)
            try:
                page.append((position, wanted, env, decode(env)))
            except ErasedPayload:
                continue  # its person was erased (issue 22): projected as erased, i.e. not at all
        # the keys the page's sealed cells need, new persons' made in one transaction (docs/erasure.md)
        w.cipher.prepare(ev for _, _, _, ev in page)
        for position, wanted, env, ev in page:
            for name, apply, batched in wanted:
                if behind_all or position > positions[name]:
                    apply(w if batched else w.conn, ev, env, position)
            applied += 1
            if armed:
                faultpoint("projector.mid_page")
        w.flush()
        last = rows[-1][0]
        # one executemany for every projection's position: a page of a few events (a Kafka poll during
        # propagation) otherwise pays one statement per projection
        moved = [p.name for p in self.projections if last > positions[p.name]]
        upsert(conn, tracking, [{"name": name, "position": last} for name in moved], ["name"])
        return applied

    def _readers(self) -> Readers:
        """Topic → (name, apply or handle, batched?) of the projections reading it, in projection order.

        One dict lookup per event instead of a membership and an ``isinstance`` (ABC) test per projection
        and event (figure "projection rebuild"); a batched projection's ``apply`` gets the page's writer,
        any other's ``handle`` the connection with the writer's pending rows flushed first.
        """
        readers: Readers = {}
        for p in self.projections:
            batched = isinstance(p, BatchedProjection)
            apply = p.apply if isinstance(p, BatchedProjection) else p.handle
            for topic in p.topics:
                readers.setdefault(topic, []).append((p.name, apply, batched))
        return readers

    def reset(self, names: Iterable[str] | None = None) -> list[str]:
        chosen = [self.by_name[n] for n in names] if names else self.projections
        with self.engine.begin() as conn:
            self._lock(conn)
            for p in chosen:
                for t in reversed(p.tables):
                    conn.execute(t.delete())
                conn.execute(tracking.delete().where(tracking.c.name == p.name))
        return [p.name for p in chosen]

    def rebuild(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> int:
        """Every event of the log applied afresh to ``names`` (default: all): built apart, without durability
        or secondary indexes, and swapped in at once (:mod:`projections.bulk`), then caught up to the log's
        head. Until the swap commits the live views stay exactly as they were, whatever happens to this
        process. An in-memory SQLite database (tests) is reset and caught up in place."""
        from projections.bulk import BULK_PAGE, bulk_rebuild, can_bulk_rebuild

        chosen = [self.by_name[n] for n in names] if names else self.projections
        with self._threads:
            if not can_bulk_rebuild(self.engine):
                self.reset(names)
                with self.engine.connect() as conn, bulk_writes(conn):
                    return self._catch_up(conn, progress, None)
            end = self.app.max_position()
            scratch = _ScratchBuilder(self.app, self.engine, chosen, page=BULK_PAGE)

            def build(engine: Engine) -> int:
                scratch.engine = engine
                with engine.connect() as conn:
                    return scratch._catch_up(conn, progress, end)

            tables = [t for p in chosen for t in p.tables]
            early = {name for p in chosen for name in getattr(p, "build_indexes", ())}
            applied = bulk_rebuild(self.engine, tables, early, [p.name for p in chosen], end, build, self._lock)
            with self.engine.connect() as conn:  # what was logged during the build, by the live path
                return applied + self._catch_up(conn, None, None)


class _ScratchBuilder(Projector):
    """Applies the log to a rebuild's scratch (projections.bulk), which is that rebuild's alone: no lock shared
    with the live projectors, which go on projecting into the live tables meanwhile."""

    @staticmethod
    def _lock(conn: Connection) -> None:
        return None


# SQLite settings of a connection that writes projections in bulk (see bulk_writes)
BULK_PRAGMAS = (("wal_autocheckpoint", 16384), ("cache_size", -16384))


@contextmanager
def bulk_writes(conn: Connection) -> Iterator[None]:
    """SQLite settings for a rebuild's one connection, put back after it.

    A page of a rebuild dirties far more database pages than the WAL's default 1000-page checkpoint
    threshold, so almost every commit also checkpointed and synced the database file (a fifth of a rebuild
    of 300k events). Checkpointing every 64 MB of WAL instead, and a 16 MB page cache, cut the rebuild's time
    by about 15% (figure "projection rebuild"); every commit stays as durable as before (``synchronous``
    is untouched). Not on the live path: a large checkpoint would stall whichever small write met it (tried in
    the projections process too: the Kafka ingest figure did not move, 0.69-0.72× either way).
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = [(p, conn.exec_driver_sql(f"PRAGMA {p}").scalar()) for p, _ in BULK_PRAGMAS]
    for pragma, value in BULK_PRAGMAS:
        conn.exec_driver_sql(f"PRAGMA {pragma}={value}")
    conn.commit()  # (the pragma reads began the driver's transaction)
    try:
        yield
    finally:
        for pragma, old in before:
            conn.exec_driver_sql(f"PRAGMA {pragma}={int(old or 0)}")
        conn.commit()
