"""What every flagledger aggregate shares: an owning agency and whether its events leave the node."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger import clock

NAMESPACE = uuid5(NAMESPACE_URL, "https://flagledger.example/ns")


def stable_id(*parts: str) -> UUID:
    """An id anyone can compute from ``parts``: only for streams that name no person (an agency's registry,
    keys, checkpoints). Streams about a person take a keyed id (:mod:`ledger.log.stream_ids`) as ``id``."""
    return uuid5(NAMESPACE, "/".join(parts))


class LedgerAggregate(Aggregate):
    """``agency`` is the code of the agency that owns (and alone may write) the aggregate.

    ``SHARED`` says whether the aggregate's events are published to other agencies; local ones
    (intake notes, approvals, staff, reads of protected details) never leave the node.
    """

    SHARED = False

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return clock.now()  # the node's clock, so key validity and event times agree on a skewed node

    class Created(Event, Aggregate.Created):
        pass

    if TYPE_CHECKING:  # set by each subclass's creation event; not a dataclass field
        agency: str
