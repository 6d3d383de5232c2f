"""Saving and loading: a save checks every event's fields, then records one sealed, signed batch; a load
answers an id that names nothing the caller may act on exactly like an unknown one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError as LibIntegrityError,
)
from eventsourcing.persistence import (
    OperationalError,
    PersistenceError,
    Recording,
    StoredEvent,
)

from ledger.app.values import CONCURRENT_CHANGE
from ledger.app.wiring import LedgerWiring
from ledger.domain.base import LedgerAggregate
from ledger.domain.event_fields import check_event
from ledger.errors import (
    Code,
    NotFoundError,
    StateConflict,
    StorageError,
    is_disk_full,
)
from ledger.log.envelope import Envelope

log = logging.getLogger("flagledger.ledger")
A = TypeVar("A", bound=LedgerAggregate)


class LedgerStore(LedgerWiring):
    """Saving (every event checked, sealed and signed as one batch) and loading aggregates, reading the log."""

    # -- persistence helpers -------------------------------------------------------------------
    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's ``save``, collecting our aggregates' events without its runtime-Protocol
        ``isinstance`` checks (a fifth of the time of a batched save; figure "signed append")."""
        processing = ProcessingEvent[UUID]()
        for obj in objs:
            if isinstance(obj, LedgerAggregate):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        for e in processing.events:  # every field within its bound, or nothing is saved (InputError)
            check_event(e)
        # Application.save would do the same with runtime-Protocol isinstance checks on every object: a fifth
        # of a batched save (figure "signed append"). So the three steps it runs are called here, private to
        # eventsourcing, which is pinned (==9.5.6) for that reason; tests/integration cover every save path.
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # the library still calls its deprecated hook
        return recordings

    def save_as(self, origin: str, *aggregates: LedgerAggregate | None) -> list[int]:
        """Save aggregates as one sealed batch originated by ``origin``; returns notification ids."""
        try:
            recordings = self.save(*aggregates, origin=origin)
        except LibIntegrityError as exc:
            # the driver's words (constraint, key values) are for the log, never for the person at the screen
            log.info("save refused by the store's unique key: %s", exc)
            raise StateConflict(CONCURRENT_CHANGE, code=Code.CONCURRENT_CHANGE) from exc
        except (PersistenceError, OperationalError) as exc:
            if is_disk_full(exc):
                raise StorageError(
                    f"the disk holding the event store is full ({exc}): nothing was recorded. Free space on that "
                    "filesystem (or grow the volume), then repeat the command",
                    code=Code.DISK_FULL,
                ) from exc
            raise StorageError(
                f"the event store refused the write: {exc}; nothing was recorded. Check the database, then "
                "repeat the command"
            ) from exc
        # (its key events are in the key registry: the store's door folded them in, ledger.log.store)
        return [r.notification.id for r in recordings]

    def load(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        try:
            agg: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise self._unknown(what, aggregate_id) from None
        except (PersistenceError, OperationalError) as exc:
            raise StorageError(f"cannot read {what}: {exc}") from exc
        if not isinstance(agg, cls):  # another kind of object under that id: answered as if there were none
            raise self._unknown(what, aggregate_id)
        return agg

    @staticmethod
    def _unknown(what: str, aggregate_id: UUID) -> NotFoundError:
        """The one answer for an id that names nothing the caller may act on: unknown, another kind of
        object, or another agency's (requests, cases, protections) — so no answer tells them apart."""
        return NotFoundError(f"unknown {what}")

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            return self.load(cls, aggregate_id, cls.__name__)
        except NotFoundError:
            return None

    # -- reading the log ------------------------------------------------------------------------------
    def envelopes(
        self, start: int = 1, page: int = 1000, stop: int | None = None
    ) -> Iterator[tuple[int, StoredEvent, Envelope]]:
        """Stream (notification id, row, envelope) in log order, page by page (bounded memory)."""
        mapper = self.signed_mapper
        while True:
            rows = self.recorder.select_notifications(start=start, limit=page, stop=stop)
            for n in rows:
                yield n.id, n, mapper.open(n.state)
            if len(rows) < page:
                return
            start = rows[-1].id + 1

    def max_position(self) -> int:
        try:
            return self.recorder.max_notification_id() or 0
        except PersistenceError as exc:  # e.g. the connection was lost: nothing changed, ask again later
            raise StorageError(f"cannot read the log's last position: {exc}") from exc
