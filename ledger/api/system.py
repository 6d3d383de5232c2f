"""Signing in to the API, each caller with its own credential (issue 18): staff with their password (and
one-time code) at ``POST /api/v1/sign-in``; system callers (the portal, the linkage gateway) with their
account's secret at ``POST /api/v1/system/token``. Nobody can mint a token on someone else's behalf, and every
grant is recorded (``TokenGrant.Issued``)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from ledger.api.auth import issue_system_token, sign_in
from ledger.api.deps import CurrentNode
from ledger.api.schemas import ERROR_RESPONSES, SignInOut, SignInRequest, SystemTokenOut, SystemTokenRequest

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["signing in"], responses=ERROR_RESPONSES)


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


@router.post(
    "/sign-in",
    response_model=SignInOut,
    summary="a staff member signs in with their own password (and one-time code) and gets a token for themselves",
)
def staff_sign_in(body: SignInRequest, node: CurrentNode) -> SignInOut:
    token, who = sign_in(
        node,
        body.agency,
        body.staff,
        body.password,
        code=body.code,
        ttl=timedelta(seconds=body.ttl_seconds),
        roles=tuple(body.roles) if body.roles else None,
    )
    return SignInOut(
        token=token,
        agency=who.actor.agency,
        staff=who.actor.staff,
        roles=list(who.roles),
        expires_at=who.expires_at.isoformat(),
    )
