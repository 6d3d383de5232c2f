"""ProvisionRequest and the holding rule on their own: what is held, and who may decide a held request."""

from __future__ import annotations

import pytest

from ledger.domain.provision import ProbeNotice, ProvisionRequest, must_hold
from ledger.errors import SelfApprovalError, StateConflict
from tests.support.domain import A, B, emitted, pseudonym

VICTIM = pseudonym("victim")
P = "ledger.domain.provision:ProvisionRequest."


def received() -> ProvisionRequest:
    return ProvisionRequest(
        agency=A,
        querier=B,
        subject=VICTIM,
        legal_item=9,
        procedure="児童手当",
        info_kind="地方税関係情報",
        applicant="unknown",
    )


def test_any_no_auto_response_anywhere_holds_the_request() -> None:
    """Threat: the perpetrator asking through any agency — one NO_AUTO_RESPONSE held nationwide, by
    whichever agency, holds every request about the person; NON_DISCLOSURE alone does not."""
    assert must_hold({"NO_AUTO_RESPONSE": ["131032"]})
    assert must_hold({"NON_DISCLOSURE": [A], "NO_AUTO_RESPONSE": [B, A]})
    assert not must_hold({"NON_DISCLOSURE": [A]})
    assert not must_hold({"NO_AUTO_RESPONSE": []})
    assert not must_hold({})


def test_a_held_request_is_decided_by_two_people_on_the_proposal_seen() -> None:
    """Threat: an administrator / shell user deciding alone, or an approver approving a proposal replaced
    after they looked (stale version): both refused, and nothing is recorded for a refusal."""
    r = received()
    r.hold(["NO_AUTO_RESPONSE"])
    with pytest.raises(StateConflict, match="no decision"):
        r.approve_decision("apr", 1)
    with pytest.raises(StateConflict, match="provide"):
        r.propose("disclose everything", "unknown", "rev", "")
    r.propose("refuse", "known_perpetrator", "rev", "caller matched the perpetrator")
    first = r.proposal_version
    r.propose("provide", "protected_person", "rev", "the person asked themselves")
    current = r.proposal_version
    assert first is not None and current == first + 1 == r.version
    with pytest.raises(SelfApprovalError):
        r.approve_decision("rev", current)
    with pytest.raises(StateConflict) as stale:
        r.approve_decision("apr", first)
    assert stale.value.code == "stale_proposal"
    assert r.status == "held"
    r.approve_decision("apr", current)
    assert r.status == "provided_manually"
    assert emitted(r) == [
        P + "Received",
        P + "Held",
        P + "DecisionProposed",
        P + "DecisionProposed",
        P + "ManuallyProvided",
    ]
    with pytest.raises(StateConflict, match="not held"):
        r.propose("refuse", "unknown", "rev", "")


def test_a_refusal_is_final_and_an_automatic_answer_cannot_be_reviewed_into_another() -> None:
    """Threat: an insider re-deciding a request already answered (refused, or provided automatically)."""
    r = received()
    r.hold(["NO_AUTO_RESPONSE"])
    r.propose("refuse", "known_perpetrator", "rev", "")
    r.approve_decision("apr", r.version)
    assert r.status == "refused"
    with pytest.raises(StateConflict, match="not held"):
        r.approve_decision("apr2", r.version - 1)
    auto = received()
    auto.provide_automatically()
    assert auto.status == "provided"
    with pytest.raises(StateConflict, match="not held"):
        auto.propose("refuse", "unknown", "rev", "")
    assert emitted(auto) == [P + "Received", P + "AutoProvided"]
    assert emitted(r)[-1] == P + "Refused"


def test_a_decision_the_hub_refused_as_stale_is_reopened_once_and_decided_again_by_two_people() -> None:
    """Threat: the perpetrator asking through the hub (the hub refused the decision as taken before late advice:
    the request must not stay stuck, and must be decided again by four eyes, never automatically); the broker
    replaying the hub's ``decide_again`` (a second reopen records nothing). A held or automatic request is not
    reopened."""
    held = received()
    held.hold(["NO_AUTO_RESPONSE"])
    assert held.reopen() is False  # nothing decided: nothing to reopen
    auto = received()
    auto.provide_automatically()
    assert auto.reopen() is False and auto.status == "provided"
    r = received()
    r.hold(["NO_AUTO_RESPONSE"], batched=True)
    r.propose("provide", "unknown", "rev", "")
    r.approve_decision("apr", r.version)
    r.release("2026-01-02T17:00:00+09:00")
    assert r.reopen() is True
    assert (r.status, r.proposal, r.proposal_version, r.reopened) == ("held", None, None, True)
    with pytest.raises(StateConflict, match="no decision"):
        r.approve_decision("apr", r.version)
    r.propose("refuse", "unknown", "rev", "")
    with pytest.raises(SelfApprovalError):
        r.approve_decision("rev", r.version)
    r.approve_decision("apr", r.version)
    assert r.status == "refused" and r.answer_released  # released at once: the first batch release stands
    assert r.reopen() is False  # once: a replay finds it reopened already
    assert emitted(r)[-4:] == [P + "Released", P + "Reopened", P + "DecisionProposed", P + "Refused"]


def test_a_probe_notice_names_the_holders_sorted_and_is_shared() -> None:
    """Threat: the perpetrator probing unnoticed — the agencies that set flags are told who asked."""
    n = ProbeNotice(
        agency=A, holders=["131032", B], request_id=received().id, querier=B, procedure="児童手当", legal_item=9
    )
    assert ProbeNotice.SHARED and ProvisionRequest.SHARED
    assert n.holders == ["131024", "131032"]
    assert emitted(n) == ["ledger.domain.provision:ProbeNotice.Sent"]
