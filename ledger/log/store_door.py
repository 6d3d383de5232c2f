"""The one door into the event store: every event the log holds went in through :class:`StoreDoor`.

Two kinds of event enter the log, and both through here:

* :meth:`StoreDoor.save` — a batch this node seals (``FlagLedger.save_as`` → the library's ``save`` →
  ``SignedEventStore.put``): the recorder seals it over the log head inside its insert transaction
  (:mod:`ledger.log.head`);
* :meth:`StoreDoor.receive` — envelopes another agency sealed, already verified and decided by ingest
  (:mod:`consumers.decide`), stored byte for byte with their original signature.

After the insert, and only after it succeeded, the door does what every write must be followed by: the streams'
new heads and owners go into the store's memo (so the next write chains to them without a read), and key
events are folded into the key registry (so the next event signed by a new key verifies). A refused insert
leaves no memo of the heads it would have written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError as LibIntegrityError
from eventsourcing.persistence import Notification, PersistenceError, Recording, StoredEvent

from ledger.errors import StateConflict, StorageError
from ledger.log.envelope import Envelope

__all__ = ["KEY_TOPIC_PREFIX", "HeadMemo", "KeyFolder", "StoreDoor", "owner_of"]

KEY_TOPIC_PREFIX = "ledger.domain.keys:"

Head = tuple[int, str]
Owner = tuple[str, str]
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
