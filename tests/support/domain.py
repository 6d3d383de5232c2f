"""Helpers for the domain unit tests (tests/unit/domain/): pseudonyms and the events an aggregate emitted."""

from __future__ import annotations

import hashlib

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ledger.domain.event_fields import check_event

A, B = "131016", "131024"  # two municipalities
SC = "SC-TOKYO"  # a spousal-violence support centre


def pseudonym(name: str) -> str:
    """A pseudonym-shaped subject (``p`` + 32 hex digits), as the application would make from a number."""
    return "p" + hashlib.sha256(name.encode()).hexdigest()[:32]


def emitted(aggregate: Aggregate) -> list[str]:
    """The topics of the events ``aggregate`` has pending (taking them), each checked against the field rules
    every saved event must pass (:func:`ledger.domain.event_fields.check_event`) and numbered in order."""
    events = aggregate.collect_events()
    for e in events:
        check_event(e)
        check_event(e, peer=True)  # every field declared and shaped, as a peer would be held to
    assert [e.originator_version for e in events] == list(
        range(aggregate.version - len(events) + 1, aggregate.version + 1)
    )
    return [get_topic(type(e)) for e in events]
