"""FlagRequest, Protection and BodyRequest on their own: the four-eyes chain and the flags an agency holds."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.flags import BodyRequest, FlagRequest, Protection
from ledger.errors import NotFoundError, SelfApprovalError, StateConflict
from tests.support.domain import SC, A, emitted, pseudonym

VICTIM = pseudonym("victim")


def request(approvals: int = 2, requested_by: str = "req") -> FlagRequest:
    return FlagRequest(
        id=uuid4(),
        agency=A,
        kind="set",
        subject=VICTIM,
        flags=["NO_AUTO_RESPONSE", "NON_DISCLOSURE"],
        reason="dv",
        review_date="2027-06-30",
        requested_by=requested_by,
        approvals_required=approvals,
        case_id=None,
        explanation="",
        body_request_id=None,
    )


def test_a_request_needs_its_whole_approval_chain_before_an_operator_acts() -> None:
    """Threat: an administrator / shell user acting alone — a flag change executes only after the agency's
    full chain of approvals by people other than the requester."""
    r = request(approvals=2)
    assert emitted(r) == ["ledger.domain.flags:FlagRequest.Requested"]
    assert r.flags == ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"] and r.status == "pending"
    r.approve("apr")
    with pytest.raises(StateConflict, match="pending"):
        r.execute("op")
    r.approve("apr2", note="checked")
    assert r.status == "approved" and r.approvals == ["apr", "apr2"]
    r.execute("op")
    assert r.status == "executed" and r.decided_by == "op"
    assert emitted(r) == [
        "ledger.domain.flags:FlagRequest.Approved",
        "ledger.domain.flags:FlagRequest.Approved",
        "ledger.domain.flags:FlagRequest.Executed",
    ]
    with pytest.raises(StateConflict, match="already executed"):
        r.execute("op")


def test_the_requester_cannot_approve_or_reject_and_one_approver_counts_once() -> None:
    """Threat: an administrator / shell user — one person (or one person twice) is not four eyes."""
    r = request(approvals=2)
    emitted(r)
    with pytest.raises(SelfApprovalError):
        r.approve("req")
    with pytest.raises(SelfApprovalError):
        r.reject("req", "no")
    r.approve("apr")
    with pytest.raises(StateConflict, match="already approved"):
        r.approve("apr")
    assert r.approvals == ["apr"] and r.status == "pending"
    assert emitted(r) == ["ledger.domain.flags:FlagRequest.Approved"]  # the refusals recorded nothing


def test_a_rejected_request_stays_rejected() -> None:
    """Threat: an insider reviving a rejected request by approving or executing it afterwards."""
    r = request(approvals=1)
    r.reject("apr", "not enough evidence")
    assert r.status == "rejected" and r.decided_by == "apr"
    with pytest.raises(StateConflict, match="rejected"):
        r.approve("apr2")
    with pytest.raises(StateConflict, match="cannot be executed"):
        r.execute("op")
    assert emitted(r)[-1] == "ledger.domain.flags:FlagRequest.Rejected"


def test_flag_requests_stay_local_and_protections_are_shared() -> None:
    """Threat: a peer agency — approvals and explanations never leave the node; the flags that protect do."""
    assert FlagRequest.SHARED is False
    assert Protection.SHARED is True and BodyRequest.SHARED is True


def test_protection_sets_renews_and_releases_only_what_it_holds() -> None:
    """Threat: the perpetrator benefiting from a protection lifted or shortened by mistake — a release
    names only held flags, a renewal only moves the review date later, a set never overwrites."""
    stream = uuid4()
    p = Protection(id=stream, agency=A, subject=VICTIM)
    assert p.id == stream  # the caller's keyed id, never one derived from the pseudonym
    rid = uuid4()
    p.set_flags(["NON_DISCLOSURE"], rid, "op", "dv", "2027-06-30")
    assert p.active("NON_DISCLOSURE") and not p.active("NO_AUTO_RESPONSE")
    with pytest.raises(StateConflict, match="already set"):
        p.set_flags(["NON_DISCLOSURE"], uuid4(), "op", "dv", "2028-01-01")
    with pytest.raises(NotFoundError):
        p.release(["NO_AUTO_RESPONSE"], uuid4(), "op", "")
    with pytest.raises(StateConflict, match="later"):
        p.renew(["NON_DISCLOSURE"], uuid4(), "op", "2027-06-30")
    p.renew(["NON_DISCLOSURE"], uuid4(), "op", "2028-06-30")
    assert p.flags["NON_DISCLOSURE"]["review_date"] == "2028-06-30"
    assert p.flags["NON_DISCLOSURE"]["request_id"] == rid
    p.release(["NON_DISCLOSURE"], uuid4(), "op", "moved abroad")
    assert p.flags == {}
    assert emitted(p) == [
        "ledger.domain.flags:Protection.Opened",
        "ledger.domain.flags:Protection.FlagsSet",
        "ledger.domain.flags:Protection.FlagsRenewed",
        "ledger.domain.flags:Protection.FlagsReleased",
    ]


def test_a_body_request_names_the_municipality_asked() -> None:
    """Threat: a peer agency — a support centre's request is addressed to one municipality, flags sorted."""
    b = BodyRequest(
        agency=SC,
        municipality=A,
        subject=VICTIM,
        flags=["NO_AUTO_RESPONSE", "NON_DISCLOSURE"],
        reason="stalking",
        sent_by="staff1",
    )
    assert (b.agency, b.municipality, b.flags) == (SC, A, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"])
    assert emitted(b) == ["ledger.domain.flags:BodyRequest.Sent"]
