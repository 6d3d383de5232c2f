"""A holder's four-eyes approval of a proxy over HTTP (issue 19, docs/linkage.md): while this agency protects the
person, the approved proxy may read their portal page in the hub topology. Each act goes through
:class:`ledger.app.FlagLedger` after the token's own roles are checked — the roles each step takes are the guardian
bars' (ledger/api/four_eyes.py, ledger/api/companions.py); the node's bridge sends what is in force to the hub."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger.api.deps import Caller, CurrentNode
from ledger.api.four_eyes import APPROVE, PROPOSE, require_either_side
from ledger.api.schemas import ERROR_RESPONSES, Body, Note, Subject

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["year"], responses=ERROR_RESPONSES)


class ProxyApprovalIn(Body):
    subject: Subject = Field(description="the person this agency holds a flag on")
    proxy: Subject = Field(description="the proxy who may read the person's portal page while protected")
    note: Note = ""


class WithdrawalIn(Body):
    note: Note = Field(description="why the proxy may no longer read the person's page")


class ProxyApprovalOut(BaseModel):
    approval_id: UUID
    status: str


class ProxyApprovalsOut(BaseModel):
    approvals: list[dict[str, Any]]


@router.post(
    "/proxy-approvals",
    response_model=ProxyApprovalOut,
    status_code=201,
    summary="propose a holder's approval of a proxy (a requester)",
)
def propose(body: ProxyApprovalIn, node: CurrentNode, who: Caller) -> ProxyApprovalOut:
    who.require(node, PROPOSE)
    aid = node.app.propose_proxy_approval(who.actor, body.subject, body.proxy, body.note)
    return ProxyApprovalOut(approval_id=aid, status="proposed")


@router.post(
    "/proxy-approvals/{approval_id}/approve",
    response_model=ProxyApprovalOut,
    summary="approve a proxy approval (an approver, another person)",
)
def approve(approval_id: UUID, node: CurrentNode, who: Caller) -> ProxyApprovalOut:
    who.require(node, APPROVE)
    node.app.approve_proxy_approval(who.actor, approval_id)
    return ProxyApprovalOut(approval_id=approval_id, status="in_force")


@router.post(
    "/proxy-approvals/{approval_id}/withdraw",
    response_model=ProxyApprovalOut,
    summary="propose withdrawing a proxy approval",
)
def withdraw(approval_id: UUID, body: WithdrawalIn, node: CurrentNode, who: Caller) -> ProxyApprovalOut:
    who.require(node, PROPOSE)
    node.app.propose_proxy_withdrawal(who.actor, approval_id, body.note)
    return ProxyApprovalOut(approval_id=approval_id, status="withdrawal_proposed")


@router.post(
    "/proxy-approvals/{approval_id}/withdraw/approve",
    response_model=ProxyApprovalOut,
    summary="approve withdrawing a proxy approval (another person)",
)
def approve_withdrawal(approval_id: UUID, node: CurrentNode, who: Caller) -> ProxyApprovalOut:
    who.require(node, APPROVE)
    node.app.withdraw_proxy_approval(who.actor, approval_id)
    return ProxyApprovalOut(approval_id=approval_id, status="withdrawn")


@router.get(
    "/proxy-approvals",
    response_model=ProxyApprovalsOut,
    summary="this agency's proxy approvals, proposed or in force",
)
def list_approvals(node: CurrentNode, who: Caller) -> ProxyApprovalsOut:
    require_either_side(node, who)
    return ProxyApprovalsOut(approvals=node.app.proxy_approvals(who.actor))
