"""The event store: the one door every event goes in through, and the store that seals and checks chains.

Two kinds of event enter the log, and both through :class:`StoreDoor`:

* :meth:`StoreDoor.save` — a batch this node seals (``FlagLedger.save_as`` → the library's ``save`` →
  :meth:`SignedEventStore.put`): the recorder seals it over the log head inside its insert transaction
  (:mod:`ledger.log.head`);
* :meth:`StoreDoor.receive` — envelopes another agency sealed, already verified and decided by ingest
  (:mod:`consumers.decide`), stored byte for byte with their original signature.

After the insert, and only after it succeeded, the door does what every write must be followed by: the streams'
new heads and owners go into the store's memo (so the next write chains to them without a read), and key
events are folded into the key registry (so the next event signed by a new key verifies). A refused insert
leaves no memo of the heads it would have written.

:class:`SignedEventStore` keeps that bounded memo of stream heads and owners, so a save chains to the previous
event and checks the writer's authority without reading the stream again; signing and verification themselves
are the mapper's (:mod:`ledger.log.mapper`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    Notification,
    PersistenceError,
    Recording,
    StoredEvent,
)
from eventsourcing.persistence import IntegrityError as LibIntegrityError

from ledger.domain.authority import Owner
from ledger.errors import ChainError, ConfigurationError, StateConflict, StorageError
from ledger.log.envelope import GENESIS, Envelope
from ledger.log.mapper import Head, SignedMapper

__all__ = ["KEY_TOPIC_PREFIX", "HeadMemo", "KeyFolder", "SignedEventStore", "StoreDoor", "owner_of"]

KEY_TOPIC_PREFIX = "ledger.domain.keys:"

# folds a sealed batch of key events, with their stored rows, into the key registry (FlagLedger.apply_key_events)
KeyFolder = Callable[[Sequence[tuple[Envelope, StoredEvent]]], None]


class HeadMemo(Protocol):
    """The store's memo of stream heads and owners (``SignedEventStore``)."""

    def remember_all(self, heads: dict[UUID, Head]) -> None: ...

    def remember_owner(self, originator_id: UUID, owner: Owner) -> None: ...

    def drop_heads(self, originator_ids: Sequence[UUID]) -> None: ...


class _Recorder(Protocol):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None: ...


def owner_of(env: Envelope) -> Owner:
    """The owner a stream's v1 gives it: its signer and its aggregate (:mod:`ledger.domain.authority`)."""
    return (env.header.origin, env.header.topic.rpartition(".")[0])


class StoreDoor:
    def __init__(
        self,
        recorder: _Recorder,
        memo: HeadMemo,
        protect: Callable[[bytes], bytes],
        open_state: Callable[[bytes], Envelope],
    ) -> None:
        self.recorder = recorder
        self.memo = memo
        self.protect = protect  # envelope bytes → the stored state (encrypted at rest)
        self.open_state = open_state
        self.fold_keys: KeyFolder | None = None  # set by the application that holds the key registry

    def save(
        self,
        domain_events: Sequence[DomainEventProtocol[UUID]],
        unsealed: Sequence[StoredEvent],
        heads: dict[UUID, Head],
        owners: dict[UUID, Owner],
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """Insert a batch the recorder seals (``kwargs`` carry it: ``batch=PreparedBatch``); ``heads`` and
        ``owners``: the streams' heads and owners the batch chained to, remembered once it is stored. Library
        errors are raised as they are (``FlagLedger.save_as`` words them for the person at the screen)."""
        try:
            ids = self.recorder.insert_events(unsealed, **kwargs)
        except Exception:
            self.memo.drop_heads([e.originator_id for e in domain_events])
            raise
        self.memo.remember_all(heads)
        for oid, owner in owners.items():
            self.memo.remember_owner(oid, owner)
        recordings: list[Recording[UUID]] = []
        batch = kwargs.get("batch")
        if ids and batch is not None:
            for d, s, n_id in zip(domain_events, batch.sealed, ids, strict=True):
                recordings.append(
                    Recording(d, Notification(s.originator_id, s.originator_version, s.topic, s.state, n_id))
                )
        keys = [r.notification for r in recordings if r.notification.topic.startswith(KEY_TOPIC_PREFIX)]
        if keys and self.fold_keys is not None:
            self.fold_keys([(self.open_state(n.state), n) for n in keys])
        return recordings

    def receive(self, items: Sequence[tuple[Envelope, bytes, UUID]]) -> None:
        """Insert envelopes another agency sealed — (envelope, its bytes, its stream) — in one transaction.

        Raises :class:`StateConflict` when the store's unique key refuses one (another writer stored that
        place first) and :class:`StorageError` when the database fails; either way nothing of them was kept.
        """
        if not items:
            return
        rows = [
            StoredEvent(stream, env.header.version, env.header.topic, self.protect(raw)) for env, raw, stream in items
        ]
        h = items[0][0].header
        what = f"v{h.version} of stream {h.stream}" + (f" and {len(items) - 1} more" if len(items) > 1 else "")
        try:
            self.recorder.insert_events(rows)
        except BaseException as exc:
            # the memo may be behind the store now: another writer filled the place (the unique key refused this
            # one), or the connection died after the database committed. The next decision must read the heads
            # from the store, or it would append the same place again and be refused on every redelivery.
            self.memo.drop_heads([stream for _, _, stream in items])
            if isinstance(exc, LibIntegrityError):  # a concurrent ingest of the same event: refused the second
                raise StateConflict(f"could not append {what}: {exc}") from exc
            if isinstance(exc, PersistenceError):  # connection lost, disk full, …: nothing of these was kept
                raise StorageError(
                    f"could not append {what}: {exc}; nothing was kept — the message is delivered again once the "
                    "database is back"
                ) from exc
            raise
        heads: dict[UUID, Head] = {}
        keys: list[tuple[Envelope, StoredEvent]] = []
        for (env, _, stream), row in zip(items, rows, strict=True):
            heads[stream] = (env.header.version, env.hash_hex)
            if env.header.version == 1:
                self.memo.remember_owner(stream, owner_of(env))
            if env.header.topic.startswith(KEY_TOPIC_PREFIX):
                keys.append((env, row))
        self.memo.remember_all(heads)
        if keys and self.fold_keys is not None:
            # the registry verifies one sealed batch at a time (a key added and used in the same batch)
            start = 0
            for i in range(1, len(keys) + 1):
                if i == len(keys) or keys[i][0].seal.signature != keys[start][0].seal.signature:
                    self.fold_keys(keys[start:i])
                    start = i


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
        # every write goes in through this door (StoreDoor, above): saves sealed here and peers' events
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
