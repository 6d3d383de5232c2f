"""Moves and handover (issue 21): X, protected by B, moves on to C. Until C holds, B cannot let go without an
approved decision naming the risk; a release that would leave a flag with no holder anywhere needs a second
approval and shows in every holder's queue. Told through the application, on SQLite.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.domain.flags import Protection
from ledger.domain.moves import ReleaseDecision, ResidenceChange
from ledger.errors import Code, InputError, PermissionDenied, SelfApprovalError, StateConflict
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B, C, NodeFactory
from tests.support.people import individual_number
from tests.support.trust import trust

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]
MOVED = date(2026, 12, 1)


def protect(node: Node, who: str, flags: list[str], agency: str) -> UUID:
    rid = node.app.request_flags(Actor(agency, "req"), who, flags)
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)
    return rid


def release(node: Node, who: str, flags: list[str], agency: str, approvers: tuple[str, ...] = ("apr",)) -> UUID:
    rid = node.app.request_flags(Actor(agency, "req"), who, flags, kind="release", explanation="説明済み")
    for a in approvers:
        node.app.approve_request(Actor(agency, a), rid)
    return rid


def holders(node: Node, who: str) -> dict[str, list[str]]:
    return node.app.holders_anywhere(node.app.subject(who))


def query_c(node: Node, who: str) -> str:
    """A's counter asks C about X: what the perpetrator, applying at A, could learn of C's answer."""
    answer = node.app.request_provision(
        Actor(A, "counter"), C, who, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    return answer.status


@pytest.fixture
def x(sqlite_node: Node, person: Callable[[], str]) -> str:
    who = person()
    protect(sqlite_node, who, FLAGS, B)
    return who


def test_a_move_is_a_handover_request_in_the_new_municipality_queue(sqlite_node: Node, x: str) -> None:
    """Threat: the perpetrator asking the new municipality. The move to C puts X in C's queue with the flags C
    must take over; C's own chain makes it a holder, and the request leaves the queue."""
    app = sqlite_node.app
    move = app.record_move(Actor(B, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    assert move is not None and app.find(ResidenceChange, move) is not None
    (handover,) = app.year_queue(Actor(C, "req"))["handovers"]
    assert handover["subject"] == app.subject(x) and handover["flags_to_take_over"] == FLAGS
    assert "from_agency" not in handover  # who protects is not shown to another agency
    assert app.year_queue(Actor(B, "req"))["handovers"] == []
    assert query_c(sqlite_node, x) == "in_progress"  # held while B holds: C answers nothing automatically
    protect(sqlite_node, x, FLAGS, C)  # C's own request → approve → execute, signed as every flag change
    assert app.year_queue(Actor(C, "req"))["handovers"] == []
    assert holders(sqlite_node, x) == {f: [B, C] for f in FLAGS}


def test_the_old_holder_cannot_release_before_the_new_one_holds(sqlite_node: Node, x: str) -> None:
    """Threat: the perpetrator asking the new municipality — B letting go after X moved on to C would answer
    queries to C about X automatically. Refused; nothing released; C still answers nothing."""
    app = sqlite_node.app
    app.record_move(Actor(C, "req"), x, to_agency=C, moved_on=MOVED)  # entered at C (転入), B not named
    protect(sqlite_node, x, ["NON_DISCLOSURE"], C)  # C takes over one flag only
    rid = release(sqlite_node, x, ["NO_AUTO_RESPONSE"], B, ("apr", "apr2"))
    with pytest.raises(StateConflict) as refused:
        app.execute_request(Actor(B, "op"), rid)
    assert refused.value.code == Code.HANDOVER_PENDING
    assert holders(sqlite_node, x)["NO_AUTO_RESPONSE"] == [B]
    assert app.flag_request(rid).status == "approved"  # nothing recorded by the refusal
    assert query_c(sqlite_node, x) == "in_progress"
    # the release of what C already holds is no gap
    both = release(sqlite_node, x, ["NON_DISCLOSURE"], B)
    app.execute_request(Actor(B, "op"), both)
    assert holders(sqlite_node, x)["NON_DISCLOSURE"] == [C]


def test_a_move_on_before_the_new_municipality_took_over_asks_the_next_one_instead(sqlite_node: Node, x: str) -> None:
    """Threat: the perpetrator waiting for a gap — X moves B → C and on to A before C took over. Shared mode
    behaves as the hub (tests/integration/test_agency_hub_handover_withdrawn.py): C, no longer where X lives, has
    no request left; A is asked; B may not let go until A holds, then may."""
    app = sqlite_node.app
    app.record_move(Actor(B, "req"), x, to_agency=C, moved_on=MOVED)
    assert [h["subject"] for h in app.year_queue(Actor(C, "req"))["handovers"]] == [app.subject(x)]
    later = date(2027, 1, 10)
    assert app.record_move(Actor(C, "req"), x, to_agency=A, moved_on=later) is not None  # C asked, not holding
    assert app.year_queue(Actor(C, "req"))["handovers"] == []
    (asked,) = app.year_queue(Actor(A, "req"))["handovers"]
    assert asked["flags_to_take_over"] == FLAGS and asked["moved_on"] == later.isoformat()
    rid = release(sqlite_node, x, FLAGS, B, ("apr", "apr2"))
    with pytest.raises(StateConflict) as refused:
        app.execute_request(Actor(B, "op"), rid)
    assert refused.value.code == Code.HANDOVER_PENDING
    protect(sqlite_node, x, FLAGS, A)
    app.execute_request(Actor(B, "op"), release(sqlite_node, x, FLAGS, B))
    assert holders(sqlite_node, x) == {f: [A] for f in FLAGS}
    assert app.year_queue(Actor(A, "req"))["handovers"] == [] and app.year_queue(Actor(C, "req"))["handovers"] == []


def test_a_named_risk_approved_by_another_person_lets_the_old_holder_release_once(
    sqlite_node: Node, x: str, person: Callable[[], str]
) -> None:
    """Threat: an insider releasing alone. The risk is named by one person and approved by another; an
    administrator cannot approve it; it is used by one release only."""
    app = sqlite_node.app
    app.record_move(Actor(B, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    protect(sqlite_node, x, ["NO_AUTO_RESPONSE"], C)
    with pytest.raises(InputError):
        app.propose_release_risk(Actor(B, "req"), x, ["NON_DISCLOSURE"], "  ")
    did = app.propose_release_risk(Actor(B, "req"), x, ["NON_DISCLOSURE"], "C has not set NON_DISCLOSURE yet")
    with pytest.raises(PermissionDenied):
        app.approve_release_risk(Actor(B, "admin"), did)
    rid = release(sqlite_node, x, ["NON_DISCLOSURE"], B, ("apr", "apr2"))  # the last ND holder: two approvals
    with pytest.raises(StateConflict):
        app.execute_request(Actor(B, "op"), rid)  # proposed, not approved: no decision yet
    app.approve_release_risk(Actor(B, "apr"), did)
    app.execute_request(Actor(B, "op"), rid)
    assert "NON_DISCLOSURE" not in holders(sqlite_node, x)
    # a second release relying on the same decision is refused (the decision was used)
    protect(sqlite_node, x, ["NON_DISCLOSURE"], B)
    again = release(sqlite_node, x, ["NON_DISCLOSURE"], B, ("apr", "apr2"))
    with pytest.raises(StateConflict) as refused:
        app.execute_request(Actor(B, "op"), again)
    assert refused.value.code == Code.HANDOVER_PENDING


def test_the_proposer_of_a_risk_cannot_approve_it(sqlite_node: Node, x: str) -> None:
    """Threat: an insider releasing alone (four eyes on the named risk, whatever roles a person is given)."""
    app = sqlite_node.app
    did = app.propose_release_risk(Actor(B, "req"), x, FLAGS, "C does not hold yet")
    decision = app.load(ReleaseDecision, did, "release decision")
    with pytest.raises(SelfApprovalError):
        decision.approve("req")
    assert decision.approved_by is None


def test_a_release_leaving_no_holder_needs_a_second_approval_and_warns_every_holder(sqlite_node: Node, x: str) -> None:
    """Threat: an administrator or insider releasing alone, and a peer agency's holding lapsing unseen. B is
    the last holder of NO_AUTO_RESPONSE (C holds NON_DISCLOSURE only): the release needs one approval more
    than B's chain, and C's queue shows it before it happens."""
    app = sqlite_node.app
    protect(sqlite_node, x, ["NON_DISCLOSURE"], C)
    rid = release(sqlite_node, x, ["NO_AUTO_RESPONSE"], B)
    request = app.flag_request(rid)
    assert request.approvals_required == 2 and request.status == "pending"
    with pytest.raises(StateConflict):
        app.execute_request(Actor(B, "op"), rid)
    with pytest.raises(PermissionDenied):
        app.approve_request(Actor(B, "admin"), rid)  # an administrator is no approver
    for agency in (B, C):
        (warning,) = app.year_queue(Actor(agency, "req"))["last_holder_warnings"]
        assert warning["flags"] == ["NO_AUTO_RESPONSE"] and warning["request_id"] == str(rid)
        assert warning["releasing_agency_is_you"] is (agency == B)
    assert app.year_queue(Actor(A, "req"))["last_holder_warnings"] == []  # A holds nothing on X
    app.approve_request(Actor(B, "apr2"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert holders(sqlite_node, x) == {"NON_DISCLOSURE": [B, C]}
    held = app.find(Protection, app.ids.protection(B, app.subject(x)))
    assert held is not None and list(held.flags) == ["NON_DISCLOSURE"]


def test_a_release_requested_while_another_held_is_refused_once_it_would_leave_no_holder(
    sqlite_node: Node, x: str
) -> None:
    """Threat: a peer agency — C lets go after B's release was approved on the strength of C's holding; B's
    release would now leave nobody, with only one approval: refused, to be requested again."""
    app = sqlite_node.app
    protect(sqlite_node, x, FLAGS, C)
    rid = release(sqlite_node, x, FLAGS, B)
    assert app.flag_request(rid).approvals_required == 1
    c_release = release(sqlite_node, x, FLAGS, C)
    app.execute_request(Actor(C, "op"), c_release)
    with pytest.raises(StateConflict) as refused:
        app.execute_request(Actor(B, "op"), rid)
    assert refused.value.code == Code.LAST_HOLDER
    assert holders(sqlite_node, x) == {f: [B] for f in FLAGS}


def test_the_registry_reports_a_move_only_of_a_protected_person(
    sqlite_node: Node, x: str, person: Callable[[], str]
) -> None:
    """Threat: an insider at another agency — a move of an unprotected person is not shared at all."""
    app = sqlite_node.app
    assert app.receive_residence_change(C, person(), to_agency=C, from_agency=A, moved_on=MOVED) is None
    mid = app.receive_residence_change(C, x, to_agency=C, moved_on=MOVED)
    assert mid is not None
    move = app.find(ResidenceChange, mid)
    assert move is not None and move.source == "registry" and move.recorded_by == "registry"
    assert [h["source"] for h in app.year_queue(Actor(C, "req"))["handovers"]] == ["registry"]
    with pytest.raises(InputError):  # A is neither end of the move
        app.record_move(Actor(A, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    with pytest.raises(InputError):  # a support centre is no residence
        app.record_move(Actor(B, "req"), x, to_agency="SC-TOKYO", from_agency=B, moved_on=MOVED)
    with pytest.raises(PermissionDenied):
        app.record_move(Actor(C, "counter"), x, to_agency=C, moved_on=MOVED)


def test_a_move_and_a_last_holder_warning_reach_the_new_municipality_on_its_own_node(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """Threat: a peer agency (trusted only for its own streams) and the perpetrator asking the new municipality.
    B's node records the move and the release warning; C's node ingests both (writer authority: B writes only
    its own streams), lists the handover for C, and C's own chain takes over on C's node."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    c = make_node((AgencySpec(C, "C市", "municipality"),), name="c", pseudonym_key_file=key)
    trust(c, b)
    trust(b, c)
    x = individual_number(random.Random(11))
    protect(b, x, FLAGS, B)
    b.app.record_move(Actor(B, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    assert deliver(b, c) == []
    (handover,) = c.app.year_queue(Actor(C, "req"))["handovers"]
    assert handover["flags_to_take_over"] == FLAGS
    protect(c, x, ["NON_DISCLOSURE"], C)
    assert deliver(c, b) == []
    rid = release(b, x, ["NO_AUTO_RESPONSE"], B)  # the last NO_AUTO_RESPONSE holder anywhere
    assert b.app.flag_request(rid).approvals_required == 2
    assert deliver(b, c, after=1) == []
    (warning,) = c.app.year_queue(Actor(C, "req"))["last_holder_warnings"]
    assert warning["flags"] == ["NO_AUTO_RESPONSE"] and warning["releasing_agency_is_you"] is False


def deliver(src: Node, dst: Node, after: int = 0) -> list[tuple[str, str]]:
    """Ingest what ``src`` publishes into ``dst``; (topic, code) of everything not applied (duplicates apart)."""
    pending = PendingStore(dst.app, dst.engine)
    out = []
    for _, _, raw in publishable(src.app, after):
        outcome = ingest(dst.app, raw, pending)
        if outcome.kind not in ("applied", "duplicate"):
            out.append((Envelope.from_bytes(raw).header.topic, outcome.code))
    return out
