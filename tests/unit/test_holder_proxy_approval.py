"""A holder's approval of a proxy as an aggregate (issue 19): four eyes each way, whatever roles the node's
permission table gives. Threat: one person of the holder (an insider, or an administrator who gave themself
both roles) letting the perpetrator in as proxy, or keeping him in, alone."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.proxy_approvals import HolderProxyApproval
from ledger.errors import Code, InputError, SelfApprovalError, StateConflict
from ledger.linkage.proxy_approvals import ProxyApproval


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


def test_the_hub_message_takes_both_signatures_or_none() -> None:
    """Threat: a broken or forging sender at the holder — a half-signed or mis-shaped ``proxy_approval`` is
    refused when decoded (``malformed``), before the hub looks at the roster."""
    code, proxy = "a" + "1" * 32, "a" + "2" * 32
    ok = '{"key_id":"131024:abcd","signature":"00"}'
    base = (uuid4().hex, code, proxy, "approve")
    ProxyApproval(*base).check()  # unsigned: a node whose staff sign nothing yet
    ProxyApproval(*base, uuid4().hex, ok, ok).check()
    for bad in (
        (uuid4().hex, ok, ""),
        ("", ok, ok),
        ("xyz", ok, ok),
        (uuid4().hex, ok, '{"key_id":"k"}'),
        (uuid4().hex, ok, '["key_id","signature"]'),
        (uuid4().hex, ok, '{"key_id":"k","signature":' + '"0' * 2000 + '"}'),
    ):
        with pytest.raises(InputError) as caught:
            ProxyApproval(*base, *bad).check()
        assert caught.value.code == Code.MALFORMED
