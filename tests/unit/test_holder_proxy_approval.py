"""A holder's approval of a proxy as an aggregate (issue 19): four eyes each way, whatever roles the node's
permission table gives. Threat: one person of the holder (an insider, or an administrator who gave themself
both roles) letting the perpetrator in as proxy, or keeping him in, alone."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.proxy_approvals import HolderProxyApproval
from ledger.errors import SelfApprovalError, StateConflict


def proposed() -> HolderProxyApproval:
    return HolderProxyApproval(id=uuid4(), agency="131024", subject="x", proxy="p", proposed_by="sato")


def test_the_proposer_cannot_approve_and_an_approval_is_made_once() -> None:
    a = proposed()
    with pytest.raises(SelfApprovalError):
        a.approve("sato")
    assert not a.in_force
    a.approve("suzuki")
    assert a.in_force and a.approved_by == "suzuki"
    with pytest.raises(StateConflict):
        a.approve("tanaka")


def test_a_withdrawal_is_proposed_then_approved_by_another_person() -> None:
    a = proposed()
    with pytest.raises(StateConflict):
        a.propose_withdrawal("sato", "not in force yet")
    a.approve("suzuki")
    with pytest.raises(StateConflict):
        a.withdraw("suzuki")  # nothing proposed
    a.propose_withdrawal("sato", "X withdrew her consent")
    with pytest.raises(StateConflict):
        a.propose_withdrawal("tanaka", "again")
    with pytest.raises(SelfApprovalError):
        a.withdraw("sato")
    assert a.in_force
    a.withdraw("suzuki")
    assert not a.in_force
    with pytest.raises(StateConflict):
        a.approve("tanaka")  # withdrawn: a new proposal, a new stream
