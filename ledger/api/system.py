"""System callers sign in: ``POST /api/v1/system/token`` exchanges a system account's own secret for a
short-lived token of kind ``system`` (the portal, the linkage gateway; issue 18). No administrator can mint
one on an account's behalf, and the grant is recorded (``TokenGrant.Issued``, issuer: the account)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from ledger.api.auth import issue_system_token
from ledger.api.deps import CurrentNode
from ledger.api.schemas import ERROR_RESPONSES, SystemTokenOut, SystemTokenRequest

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["system callers"], responses=ERROR_RESPONSES)


@router.post(
    "/system/token",
    response_model=SystemTokenOut,
    summary="a system account (portal, linkage gateway) signs in with its own secret",
)
def system_token(body: SystemTokenRequest, node: CurrentNode) -> SystemTokenOut:
    token, who = issue_system_token(
        node, body.agency, body.account, body.secret, ttl=timedelta(seconds=body.ttl_seconds)
    )
    return SystemTokenOut(
        token=token,
        agency=who.actor.agency,
        account=who.actor.staff,
        roles=list(who.roles),
        expires_at=who.expires_at.isoformat(),
    )
