"""Listing held requests is a read of protected details, and it is recorded before anything is shown.

A held request names the person and the querying agency (perhaps where she now lives). The rule "every read
of protected details is itself recorded" covers the decider's queue as much as the auditor's timeline: each
listing leaves one ``AccessRecord.ProtectedDetailsRead`` per person shown, by the staff member who listed it.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.app import Actor
from ledger.domain.types import Action
from ledger.errors import InputError, PermissionDenied
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B, C
from tests.integration.test_projections_views import NAR, protect, query


def queue_reads(node: Node, auditor: Actor, subject: str) -> list[tuple[str | None, str]]:
    """(actor, what) of every recorded read of ``subject``'s details made by listing a queue."""
    return [
        (e.actor, e.detail["what"])
        for e in views.subject_timeline(node, auditor, subject, "check of recorded reads")
        if e.event == "AccessRecord.ProtectedDetailsRead" and e.detail["what"] == views.HELD_LISTING
    ]


def test_a_decider_listing_held_requests_leaves_a_read_record_per_person_shown(node: Node, person: Any) -> None:
    x, y = person(), person()
    protect(node, B, x, [NAR])
    protect(node, B, y, [NAR])
    query(node, A, B, x)
    query(node, C, B, x)  # two held requests about x: one record of x per listing
    query(node, A, B, y)
    auditor = Actor(B, "aud")
    assert queue_reads(node, auditor, x) == []

    listed = views.work_queue(node, Actor(B, "apr"))
    assert sorted(h.querier for h in listed.held) == [A, A, C]
    assert queue_reads(node, auditor, x) == [("apr", views.HELD_LISTING)]
    assert queue_reads(node, auditor, y) == [("apr", views.HELD_LISTING)]

    views.work_queue(node, Actor(B, "rev"))
    assert queue_reads(node, auditor, x) == [("apr", views.HELD_LISTING), ("rev", views.HELD_LISTING)]


def test_a_queue_that_lists_no_held_request_records_nothing(node: Node, person: Any) -> None:
    x = person()
    protect(node, B, x, [NAR])
    query(node, A, B, x)
    before = node.app.max_position()
    counter = views.work_queue(node, Actor(B, "counter"))
    assert counter.held == () and counter.probes == () and counter.held_waiting == 0
    counted = views.work_queue(node, Actor(B, "apr"), held=False)
    assert counted.held == () and counted.held_waiting == 1, "a page that only counts gets the number"
    assert views.work_queue(node, Actor(A, "apr")).held == (), "A holds nothing about x"
    assert node.app.max_position() == before, "nothing was listed, so nothing was recorded"


def test_recording_a_listing_is_refused_to_staff_who_do_not_do_that_work(node: Node, person: Any) -> None:
    x = person()
    before = node.app.max_position()
    deciders = (Action.REVIEW_HELD, Action.APPROVE_HELD)
    with pytest.raises(PermissionDenied):
        node.app.record_listing(Actor(B, "counter"), [x], views.HELD_LISTING, views.HELD_LISTING_PURPOSE, deciders)
    with pytest.raises(InputError, match="purpose"):
        node.app.record_listing(Actor(B, "rev"), [x], views.HELD_LISTING, " ", deciders)
    assert node.app.max_position() == before, "a refused record saves nothing"
