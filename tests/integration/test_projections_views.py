"""Projection stories through real ledger commands, on SQLite and PostgreSQL (the ``node`` fixture).

Each story plays commands on a node hosting A, B, C and a support centre, then reads the views the way
Mynaportal, a counter, a work queue or an auditor does.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger.app import Actor
from ledger.errors import NotFoundError, PermissionDenied
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import SC, A, B, C
from tests.support.approvals import approve_fully
from tests.support.links import link

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


def protect(node: Node, agency: str, subject: str, flags: list[str], review: date | None = None) -> UUID:
    app = node.app
    rid = app.request_flags(Actor(agency, "req"), subject, flags, review_date=review)
    app.approve_request(Actor(agency, "apr"), rid)
    app.execute_request(Actor(agency, "op"), rid)
    return rid


def release(node: Node, agency: str, subject: str, flags: list[str]) -> None:
    app = node.app
    rid = app.request_flags(Actor(agency, "req"), subject, flags, kind="release", explanation="explained")
    approve_fully(app, agency, rid)
    app.execute_request(Actor(agency, "op"), rid)


def query(node: Node, querier: str, provider: str, subject: str, **kw: Any) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"),
        provider,
        subject,
        legal_item=74,
        procedure="児童手当",
        info_kind="地方税関係情報",
        **kw,
    ).request_id


def shown(node: Node, viewer: str, subject: str) -> list[str]:
    return [r.request_id for r in views.portal_records(node, viewer, subject).records]


def test_a_flag_set_at_b_hides_records_made_at_a_and_c_while_only_b_holds_it(node: Node, person: Any) -> None:
    y = person()
    before = query(node, B, A, y)
    assert shown(node, y, y) == [before]
    protect(node, B, y, [ND])
    query(node, C, A, y)
    assert shown(node, y, y) == [], "nationwide: B's flag hides B's, A's and C's records alike"
    held_at_b = views.agency_flag_state(node, Actor(B, "apr"), y)
    assert [(f.flag, f.active, [h.action for h in f.history]) for f in held_at_b] == [(ND, True, ["set"])]
    assert views.agency_flag_state(node, Actor(A, "apr"), y) == [], "per-municipality state: A holds nothing"
    assert views.agency_flag_state(node, Actor(C, "apr"), y) == []


def test_records_stay_hidden_after_release_and_new_ones_are_shown(node: Node, person: Any) -> None:
    y = person()
    query(node, B, A, y)
    protect(node, B, y, [ND])
    query(node, B, A, y)
    release(node, B, y, [ND])
    after = query(node, C, A, y)
    assert shown(node, y, y) == [after]
    (state,) = views.agency_flag_state(node, Actor(B, "apr"), y)
    assert not state.active and state.released_at is not None
    assert [h.action for h in state.history] == ["set", "release"]


def test_release_at_one_agency_keeps_the_person_hidden_while_another_holds_the_flag(node: Node, person: Any) -> None:
    x = person()
    protect(node, B, x, [ND])
    protect(node, C, x, [ND])
    release(node, B, x, [ND])
    query(node, A, B, x)
    assert shown(node, x, x) == []
    assert views.nationwide_view(node, Actor(A, "counter"), x).flags == (ND,)


def test_proxies_see_exactly_what_the_subject_sees_and_cancelled_proxies_nothing(node: Node, person: Any) -> None:
    x, y, stranger = person(), person(), person()
    node.app.register_proxy(Actor(A, "req"), x, y)
    first = query(node, A, B, x)
    as_proxy, as_subject = views.portal_records(node, y, x), views.portal_records(node, x, x)
    assert (as_proxy.access, as_subject.access) == (
        "proxy",
        "self",
    ) and as_proxy.records == as_subject.records
    assert shown(node, y, x) == [first]
    protect(node, B, x, [ND, NAR])
    assert shown(node, y, x) == shown(node, x, x) == []
    assert views.self_information(node, y, x).withheld
    assert views.portal_records(node, stranger, x).access == "none"
    node.app.cancel_proxy(Actor(B, "req"), x, y, "intake advice")
    release(node, B, x, [ND, NAR])
    later = query(node, A, B, x)
    assert shown(node, x, x) == [later], "the subject sees the record made after release"
    assert views.portal_records(node, y, x) == views.PortalView("none", ()), "the cancelled proxy sees nothing"
    assert views.self_information(node, y, x) == views.SelfInfoView("none", False, ())


def test_self_information_is_not_shown_while_no_auto_response_applies(node: Node, person: Any) -> None:
    x = person()
    query(node, A, B, x)
    info = views.self_information(node, x, x)
    assert [(h.agency, h.info_kind) for h in info.holdings] == [(B, "地方税関係情報")]
    protect(node, C, x, [NAR])  # set anywhere: withheld everywhere
    assert views.self_information(node, x, x) == views.SelfInfoView("self", True, ())


def test_protection_follows_a_number_change(node: Node, person: Any) -> None:
    old, new = person(), person()
    protect(node, B, old, [ND, NAR])
    link(node.app, C, old, new)
    query(node, A, C, new)
    assert shown(node, new, new) == []
    assert shown(node, new, old) == [], "logging in with the new number is the same person"
    seen = views.nationwide_view(node, Actor(C, "counter"), new)
    assert seen.protected and seen.flags == (ND, NAR)
    assert views.self_information(node, new, new).withheld
    events = [e.event for e in views.subject_timeline(node, Actor(B, "aud"), new, "audit")]
    assert "Protection.FlagsSet" in events, "the holder's auditor follows the person to the new number"
    events = [e.event for e in views.subject_timeline(node, Actor(C, "aud"), new, "audit")]
    assert "PseudonymLink.Linked" in events and "Protection.FlagsSet" not in events, "C sees its own events only"


def test_other_agencies_see_that_a_person_is_protected_but_not_where(node: Node, person: Any) -> None:
    x = person()
    protect(node, B, x, [ND, NAR])
    at_a = views.nationwide_view(node, Actor(A, "counter"), x)
    assert at_a.protected and at_a.flags == (ND, NAR) and at_a.holders is None
    assert len(at_a.liaison) == 1 and B not in at_a.liaison[0]
    assert views.nationwide_view(node, Actor(B, "counter"), x).holders == (B,)
    before = node.app.max_position()
    for who in (Actor(A, "counter"), Actor(A, "aud"), Actor(A, "rev"), Actor(B, "aud")):
        with pytest.raises(PermissionDenied) as refused:
            views.nationwide_view(node, who, x, purpose="complaint review")
        assert refused.value.code == "holders_withheld"
    assert node.app.max_position() == before, "a refused read records nothing"
    target = views.resolve_liaison(node, Actor(B, "rev"), at_a.liaison[0], purpose="A asks B to call her")
    assert target.subject == node.app.subject(x) and target.flags == (ND, NAR)
    with pytest.raises(NotFoundError):
        views.resolve_liaison(node, Actor(C, "rev"), at_a.liaison[0], purpose="curious")


def test_the_counter_never_names_the_provider_of_a_protected_person(node: Node, person: Any) -> None:
    x = person()
    answered = query(node, A, B, x)
    (before,) = views.counter_view(node, Actor(A, "counter"), x).answers
    assert before.provider == B and before.request_id == answered
    protect(node, B, x, [NAR])
    query(node, A, B, x)
    cv = views.counter_view(node, Actor(A, "counter"), x)
    assert [a.status for a in cv.answers] == ["answered", "in_progress"]
    assert all(a.provider is None for a in cv.answers)
    assert cv.protection.holders is None
    with pytest.raises(PermissionDenied):
        views.counter_view(node, Actor(A, "aud"), x)


def test_work_queues_list_what_waits_for_each_agency(node: Node, person: Any) -> None:
    x, y, z = person(), person(), person()
    app = node.app
    today = app.clock().date()
    body = app.send_body_request(Actor(SC, "req"), B, x, [NAR, ND])
    pending = app.request_flags(
        Actor(B, "req"), x, [NAR, ND], body_request_id=body, review_date=today + timedelta(days=10)
    )
    queue = views.work_queue(node, Actor(B, "apr"))
    assert [(a.request_id, a.status) for a in queue.approvals] == [(str(pending), "pending")]
    assert [(b.body, b.decided, b.outcome) for b in queue.body_requests] == [(SC, False, "pending")]
    app.approve_request(Actor(B, "apr"), pending)
    assert [a.status for a in views.work_queue(node, Actor(B, "apr")).approvals] == ["approved"]
    app.execute_request(Actor(B, "op"), pending)
    protect(node, B, z, [ND], review=today + timedelta(days=200))
    queue = views.work_queue(node, Actor(B, "apr"))
    assert queue.approvals == ()
    assert [(b.decided, b.outcome) for b in queue.body_requests] == [(True, "executed")]
    assert sorted((d.flag, d.days_left) for d in queue.reviews_due) == [(ND, 10), (NAR, 10)]
    first = query(node, A, B, x, applicant="unknown")
    second = query(node, C, B, x, applicant="protected_person")
    query(node, A, B, y)  # not protected: answered, never queued
    app.propose_decision(Actor(B, "rev"), UUID(first), "refuse", "known_perpetrator")
    held = views.work_queue(node, Actor(B, "apr")).held
    assert [(h.request_id, h.querier, h.applicant) for h in held] == [
        (first, A, "known_perpetrator"),
        (second, C, "protected_person"),
    ], "oldest first, with the relation"
    app.approve_decision(Actor(B, "apr"), UUID(first), held[0].proposal_version)
    assert [h.request_id for h in views.work_queue(node, Actor(B, "apr")).held] == [second]
    assert views.work_queue(node, Actor(A, "apr")).held == (), "A provides nothing about x"


def test_the_timeline_shows_every_event_with_actors_and_approvals_to_auditors_only(node: Node, person: Any) -> None:
    x, y = person(), person()
    app = node.app
    app.open_case(Actor(B, "req"), x, perpetrators=[y])
    protect(node, B, x, [NAR])
    query(node, A, B, x)
    with pytest.raises(PermissionDenied):
        views.subject_timeline(node, Actor(B, "counter"), x, "curious")
    entries = views.subject_timeline(node, Actor(B, "aud"), x, "yearly audit")
    assert [e.position for e in entries] == sorted(e.position for e in entries)
    steps = [(e.event, e.actor) for e in entries]
    assert steps[:5] == [
        ("ProtectionCase.Opened", "req"),
        ("FlagRequest.Requested", "req"),
        ("FlagRequest.Approved", "apr"),
        ("FlagRequest.Executed", "op"),
        ("Protection.Opened", None),
    ]
    assert ("Protection.FlagsSet", "op") in steps and ("ProvisionRequest.Held", None) in steps
    assert ("ProbeNotice.Sent", None) in steps
    assert steps[-1] == ("AccessRecord.ProtectedDetailsRead", "aud"), "the read itself is on the timeline"
    assert entries[0].detail["victim"] == app.subject(x) and entries[0].detail["perpetrators"] == [app.subject(y)]
    perpetrator_view = [e.event for e in views.subject_timeline(node, Actor(B, "aud"), y, "audit")]
    assert perpetrator_view[0] == "ProtectionCase.Opened", "the case is about the perpetrator too"
