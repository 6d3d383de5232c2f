"""The support-measure term and emergency flags (issue 21), driven by the application's injectable clock.

The term (住基 DV等支援措置): 申出, one year, 延長申出 as its own event, reminders at 30 and 7 days, escalation to
the approver and then the administrator, lapse only as an approved event — and overdue never lifts a flag.
Emergency flags: one designated person sets them, in force at once; not co-approved within a business day they
escalate; nothing lifts them automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from ledger.app import Actor
from ledger.domain.flags import FlagRequest
from ledger.domain.terms import SupportTerm
from ledger.errors import InputError, PermissionDenied, SelfApprovalError, StateConflict
from ledger.log.staff_roster import check_evidence
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, NodeFactory

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]
APPLIED = date(2026, 1, 10)


def at(node: Node, day: date, hour: int = 10) -> None:
    node.app.clock = lambda: datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def protect(node: Node, who: str) -> None:
    rid = node.app.request_flags(Actor(B, "req"), who, FLAGS)
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)


def term_topics(node: Node) -> list[str]:
    prefix = "ledger.domain.terms:SupportTerm."
    return [
        env.header.topic[len(prefix) :] for _, _, env in node.app.envelopes() if env.header.topic.startswith(prefix)
    ]


@pytest.fixture
def x(sqlite_node: Node, person: Callable[[], str]) -> str:
    who = person()
    protect(sqlite_node, who)
    at(sqlite_node, APPLIED)
    sqlite_node.app.record_application(Actor(B, "req"), who, APPLIED)
    return who


def test_reminders_then_escalations_and_overdue_never_lifts_a_flag(sqlite_node: Node, x: str) -> None:
    """Threat: the perpetrator, waiting for protection to lapse silently. The clock only records reminders and
    escalations for people; after months overdue the flags are still held and C's answers still held."""
    app = sqlite_node.app
    term = app.term(B, x)
    assert term is not None and term.ends_on == "2027-01-10"
    steps = {
        date(2026, 12, 10): [],
        date(2026, 12, 11): [("reminder", "30")],
        date(2026, 12, 20): [],
        date(2027, 1, 3): [("reminder", "7")],
        date(2027, 1, 10): [],
        date(2027, 1, 11): [("escalation", "approver")],
        date(2027, 1, 17): [],
        date(2027, 1, 18): [("escalation", "administrator")],
        date(2027, 9, 1): [],
    }
    for day, expected in steps.items():
        at(sqlite_node, day)
        done = [(d["what"], d["value"]) for d in app.year_step() if d["subject"] == app.subject(x)]
        assert done == expected, day
        assert app.year_step() == []  # each once
    assert term_topics(sqlite_node) == ["Applied", "Reminded", "Reminded", "Escalated", "Escalated"]
    # overdue never lifts a flag: still held everywhere, a query about X still waits for staff
    assert app.holders_anywhere(app.subject(x)) == {f: [B] for f in FLAGS}
    answer = app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert answer.status == "in_progress"
    # the approver's queue shows the approver-level escalation; only the administrator's the second
    (for_approver,) = app.year_queue(Actor(B, "apr"))["terms"]
    (for_admin,) = app.year_queue(Actor(B, "admin"))["terms"]
    assert for_approver["escalated_to"] == for_admin["escalated_to"] == ["approver", "administrator"]
    with pytest.raises(PermissionDenied):
        app.year_queue(Actor(B, "counter"))  # the counter clerk a perpetrator talks to sees none of it


def test_an_extension_request_is_its_own_event_and_restarts_the_reminders(sqlite_node: Node, x: str) -> None:
    """Threat: an insider back-dating a lapse — the 延長申出 is recorded with its own date and the new end."""
    app = sqlite_node.app
    at(sqlite_node, date(2026, 12, 15))
    assert [d["value"] for d in app.year_step()] == ["30"]
    assert app.request_extension(Actor(B, "req"), x, date(2026, 12, 15)) == "2028-01-10"
    term = app.term(B, x)
    assert term is not None and term.extensions == ["2026-12-15"]
    at(sqlite_node, date(2027, 1, 20))
    assert app.year_step() == []  # not overdue: the term runs to 2028
    at(sqlite_node, date(2027, 12, 20))
    assert [d["value"] for d in app.year_step()] == ["30"]
    assert "ExtensionRequested" in term_topics(sqlite_node)
    with pytest.raises(StateConflict):
        app.record_application(Actor(B, "req"), x, APPLIED)  # one term per person here: extend it instead
    with pytest.raises(InputError):
        app.record_application(Actor(B, "req"), x, date(2099, 1, 1))


def test_a_lapse_is_only_an_approved_event_and_lifts_no_flag(sqlite_node: Node, x: str) -> None:
    """Threat: an administrator or an insider ending protection alone."""
    app = sqlite_node.app
    with pytest.raises(StateConflict):
        app.approve_lapse(Actor(B, "apr"), x)  # nothing proposed
    with pytest.raises(InputError):
        app.propose_lapse(Actor(B, "req"), x, " ")
    app.propose_lapse(Actor(B, "req"), x, "延長申出なし")
    with pytest.raises(PermissionDenied):
        app.approve_lapse(Actor(B, "admin"), x)
    term = app.load(SupportTerm, app.ids.term(B, app.subject(x)), "term")
    with pytest.raises(SelfApprovalError):
        term.approve_lapse("req", "")
    app.approve_lapse(Actor(B, "apr"), x, "確認済み")
    lapsed = app.term(B, x)
    assert lapsed is not None and not lapsed.open and lapsed.lapsed_by == "apr"
    assert app.holders_anywhere(app.subject(x)) == {f: [B] for f in FLAGS}  # releasing is a release request
    at(sqlite_node, date(2027, 3, 1))
    assert app.year_step() == []  # a lapsed term escalates nothing
    with pytest.raises(StateConflict):
        app.request_extension(Actor(B, "req"), x, date(2027, 3, 1))


# -- emergency (provisional) flags --------------------------------------------------------------------------
def test_a_designated_person_sets_a_provisional_flag_alone_in_force_at_once(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: the perpetrator over a weekend — the flag holds a query at once, with one person's signature."""
    app = sqlite_node.app
    x = person()
    with pytest.raises(PermissionDenied):
        app.set_provisional(Actor(B, "req"), x, FLAGS, explanation="夜間の緊急相談")
    with pytest.raises(InputError):
        app.set_provisional(Actor(B, "op"), x, FLAGS, explanation="")
    rid = app.set_provisional(Actor(B, "op"), x, FLAGS, explanation="夜間の緊急相談")
    assert app.holders_anywhere(app.subject(x)) == {f: [B] for f in FLAGS}
    answer = app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert answer.status == "in_progress"
    request = app.flag_request(rid)
    assert request.provisional and request.approvals_required == 0 and request.status == "executed"
    assert [a["act"] for a in request.acts] == ["requested", "executed"]
    (waiting,) = app.year_queue(Actor(B, "apr"))["provisional"]
    assert waiting["request_id"] == str(rid) and waiting["escalated_to"] == []


def test_a_provisional_flag_escalates_after_a_business_day_and_is_never_lifted(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: an insider setting flags unseen, and a silent expiry reopening the leak: not co-approved within a
    business day it escalates (recorded once); the flag stays; the setter cannot co-approve it."""
    app = sqlite_node.app
    x = person()
    rid = app.set_provisional(Actor(B, "op"), x, ["NO_AUTO_RESPONSE"], explanation="緊急")
    set_at = app.flag_request(rid).created_on
    app.clock = lambda: set_at + timedelta(hours=20)
    assert app.year_step() == []
    app.clock = lambda: set_at + timedelta(days=5)  # past the next business day whatever the weekday
    (escalated,) = app.year_step()
    assert escalated["what"] == "provisional_overdue" and escalated["value"] == "administrator"
    assert app.year_step() == []
    assert app.flag_request(rid).escalated_to == ["administrator"]
    assert app.holders_anywhere(app.subject(x)) == {"NO_AUTO_RESPONSE": [B]}
    with pytest.raises(PermissionDenied):
        app.co_approve_provisional(Actor(B, "op"), rid)  # the setter is no approver
    with pytest.raises(SelfApprovalError):
        app.flag_request(rid).co_approve("op")  # nor, whatever their roles, a co-approver of their own flag
    app.co_approve_provisional(Actor(B, "apr"), rid, "確認")
    assert app.flag_request(rid).co_approved_by == "apr"
    assert app.year_queue(Actor(B, "apr"))["provisional"] == []
    with pytest.raises(StateConflict):
        app.co_approve_provisional(Actor(B, "apr2"), rid)


def test_the_provisional_path_never_releases_or_renews(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: an insider releasing alone by dressing a release as provisional — every reader's evidence check
    (the app's, a peer's ingest, ``audit verify``) accepts zero approvals only on a set by its own requester."""
    app = sqlite_node.app
    x = person()
    rid = app.set_provisional(Actor(B, "op"), x, FLAGS, explanation="緊急")
    request = app.flag_request(rid)
    payload = {
        "agency": B,
        "subject": request.subject,
        "flags": request.flags,
        "request_id": request.id,
        "by": "op",
        "review_date": request.review_date,
        "evidence": request.evidence(),
    }
    roster = app.roster(B)
    assert check_evidence(roster, "FlagsSet", payload) is None
    assert check_evidence(roster, "FlagsReleased", {**payload, "review_date": None}) is not None
    assert check_evidence(roster, "FlagsRenewed", payload) is not None
    unmarked = {**payload, "evidence": {k: v for k, v in request.evidence().items() if k != "provisional"}}
    assert check_evidence(roster, "FlagsSet", unmarked) == "a request needs at least one approval"
    assert check_evidence(roster, "FlagsSet", {**payload, "by": "apr"}) is not None  # executed by another


def test_a_provisional_flag_reaches_a_peer_and_holds_there(make_node: NodeFactory, tmp_path: Path) -> None:
    """Threat: a peer agency — C's node accepts B's provisional flag (one signed person) and holds queries."""
    import secrets

    from consumers.ingest import PendingStore, ingest
    from consumers.outbox import publishable
    from ledger.runtime.bootstrap import AgencySpec
    from tests.conftest import C
    from tests.support.people import individual_number
    from tests.support.trust import trust

    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    c = make_node((AgencySpec(C, "C市", "municipality"),), name="c", pseudonym_key_file=key)
    trust(c, b)  # C's administrator vouches for B's node key
    import random

    x = individual_number(random.Random(7))
    b.app.set_provisional(Actor(B, "op"), x, FLAGS, explanation="緊急")
    pending = PendingStore(c.app, c.engine)
    outcomes = [ingest(c.app, raw, pending) for _, _, raw in publishable(b.app, 0)]
    assert {(o.kind, o.code) for o in outcomes} == {("applied", "")}
    assert c.app.holders_anywhere(c.app.subject(x)) == {f: [B] for f in FLAGS}


def test_a_flag_request_read_back_keeps_its_provisional_acts(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: a shell user — the requester's signature is in the recorded Requested event, not only in memory."""
    app = sqlite_node.app
    rid: UUID = app.set_provisional(Actor(B, "op"), person(), ["NON_DISCLOSURE"], explanation="緊急")
    fresh = app.load(FlagRequest, rid, "flag request")
    assert [a["act"] for a in fresh.acts] == ["requested", "executed"] and fresh.provisional
