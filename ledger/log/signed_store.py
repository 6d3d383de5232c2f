"""The event store every save and read of the node goes through: it seals batches and checks stream chains.

:class:`SignedEventStore` keeps a bounded memo of stream heads and owners, so a save chains to the previous
event and checks the writer's authority without reading the stream again; signing and verification themselves
are the mapper's (:mod:`ledger.log.mapper`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import AggregateRecorder, EventStore, Recording, StoredEvent
from eventsourcing.persistence import IntegrityError as LibIntegrityError

from ledger.domain.authority import Owner
from ledger.errors import ChainError, ConfigurationError
from ledger.log.envelope import GENESIS, Envelope
from ledger.log.mapper import Head, SignedMapper
from ledger.log.store_door import StoreDoor

__all__ = ["SignedEventStore"]


class SignedEventStore(EventStore[UUID]):
    """Seals every saved batch and checks stream chains on read."""

    mapper: SignedMapper

    def __init__(self, mapper: SignedMapper, recorder: AggregateRecorder, heads_cache: int = 65536) -> None:
        super().__init__(mapper=mapper, recorder=recorder)
        self._heads: OrderedDict[UUID, Head] = OrderedDict()
        self._heads_cache = heads_cache
        # API requests read and save on many threads at once: a reader that began before a save may finish
        # after it, so heads only ever move forward, and each update of the cache is one step under this lock
        self._heads_lock = threading.Lock()
        # stream → its owner (the signer of its v1 and its aggregate; never changes), bounded like the heads
        self._owners: OrderedDict[UUID, Owner] = OrderedDict()
        self.default_origin: Callable[[], str] | None = None
        # every write goes in through this door (ledger.log.store_door): saves sealed here and peers' events
        self.door = StoreDoor(recorder, self, mapper.protect, mapper.open)

    def head(self, originator_id: UUID) -> Head | None:
        cached = self._heads.get(originator_id)
        if cached is not None:
            return cached
        return self.stored_head(originator_id)

    def stored_head(self, originator_id: UUID) -> Head | None:
        """The stream's head as the store holds it now (not the cache)."""
        rows = self.recorder.select_events(originator_id, desc=True, limit=1)
        if not rows:
            return None
        env = self.mapper.open(rows[0].state)
        self.mapper.check_row(rows[0], env)
        if rows[0].originator_version == 1:
            self.remember_owner(originator_id, (env.header.origin, env.header.topic.rpartition(".")[0]))
        return (rows[0].originator_version, env.hash_hex)

    def owner(self, originator_id: UUID) -> Owner | None:
        """The stream's owner: the agency that signed its v1 in the local log, and its aggregate (None: no such
        stream here). Who may append what to a stream is decided against this (:mod:`ledger.domain.authority`); cached,
        since it never changes, so ingest reads the v1 row once per stream at most."""
        cached = self._owners.get(originator_id)
        if cached is not None:
            return cached
        rows = self.recorder.select_events(originator_id, lte=1)
        if not rows:
            return None
        env = self.mapper.open(rows[0].state)
        self.mapper.check_row(rows[0], env)
        owner = (env.header.origin, env.header.topic.rpartition(".")[0])
        self.remember_owner(originator_id, owner)
        return owner

    def remember_owner(self, originator_id: UUID, owner: Owner) -> None:
        with self._heads_lock:  # (API threads share this cache too)
            owners = self._owners
            owners[originator_id] = owner
            if len(owners) > self._heads_cache:
                owners.popitem(last=False)

    def remember(self, originator_id: UUID, head: Head) -> None:
        with self._heads_lock:
            self._remember(originator_id, head)
            while len(self._heads) > self._heads_cache:
                self._heads.popitem(last=False)

    def _remember(self, originator_id: UUID, head: Head) -> None:
        cache = self._heads
        cached = cache.get(originator_id)
        if cached is not None and cached[0] > head[0]:
            return  # another thread saved a later event while this one read the stream
        cache[originator_id] = head
        cache.move_to_end(originator_id)

    def drop_heads(self, originator_ids: Sequence[UUID]) -> None:
        """Forget these streams' heads: a refused write must not leave stale heads behind."""
        with self._heads_lock:
            for oid in originator_ids:
                self._heads.pop(oid, None)

    def remember_all(self, heads: dict[UUID, Head]) -> None:
        """``remember`` each of a saved batch's heads (one lock and one trim per batch, not per event)."""
        with self._heads_lock:
            for oid, head in heads.items():
                self._remember(oid, head)
            while len(self._heads) > self._heads_cache:
                self._heads.popitem(last=False)

    def forget(self) -> None:
        with self._heads_lock:
            self._heads.clear()
            self._owners.clear()

    def _head_before(self, originator_id: UUID, version: int) -> Head | None:
        """The head an event at ``version`` chains to. A cached head that is not ``version - 1`` is checked
        against the store: the stream may have moved on (another thread or process saved first: the same
        conflict the store's unique key reports, raised before signing) or the cache may be behind."""
        head = self.head(originator_id)
        if head is None or head[0] != version - 1:
            head = self.stored_head(originator_id)
        if head is not None and head[0] >= version:
            raise LibIntegrityError(f"stream {originator_id} is at v{head[0]}, past the v{version - 1} read")
        return head

    def put(self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any) -> list[Recording[UUID]]:
        origin = kwargs.pop("origin", None)
        if origin is None:
            if self.default_origin is None:
                raise ConfigurationError("no originating agency given for the events being saved")
            origin = self.default_origin()
        heads: dict[UUID, Head] = {}
        owners: dict[UUID, Owner] = {}
        for e in domain_events:
            oid = e.originator_id
            if e.originator_version > 1 and oid not in heads:
                head = self._head_before(oid, e.originator_version)
                if head is not None:
                    heads[oid] = head
                    owner = self.owner(oid)
                    if owner is not None:
                        owners[oid] = owner
        if not getattr(self.recorder, "seals_batches", False):  # else it would store the unsealed rows below
            raise ConfigurationError(f"{type(self.recorder).__name__} does not seal batches over the log head")
        batch = self.mapper.prepare(domain_events, origin, heads, owners)
        if batch is None:
            return []
        # the recorder seals the batch over the log head inside its insert transaction (ledger.log.head);
        # the rows passed name the events (stream, version, topic) for any reader of the arguments
        unsealed = [StoredEvent(oid, version, topic, b"") for oid, version, topic in batch.rows]
        return self.door.save(domain_events, unsealed, heads, owners, batch=batch, **kwargs)

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[UUID]]:
        rows = self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        return self._checked(originator_id, rows, check_chain=(gt is None and not desc))

    def _checked(
        self, originator_id: UUID, rows: Sequence[StoredEvent], check_chain: bool
    ) -> Iterator[DomainEventProtocol[UUID]]:
        prev = GENESIS
        expected = 1
        env: Envelope | None = None
        for row in rows:
            env = self.mapper.open(row.state)
            self.mapper.check_row(row, env)
            if check_chain:
                if row.originator_version != expected or env.header.prev != prev:
                    raise ChainError(
                        f"stream {originator_id} is broken at v{row.originator_version} "
                        f"(expected v{expected} chained to {prev[:12]}…)"
                    )
                prev = env.hash_hex
                expected += 1
            self.mapper.verify(env)
            # check_row: the header names str() of the row's UUID, which decode would otherwise parse again
            oid = row.originator_id
            yield self.mapper.decode(env, oid if isinstance(oid, UUID) else None)
        if check_chain and env is not None:
            self.remember(originator_id, (env.header.version, env.hash_hex))
