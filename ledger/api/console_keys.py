"""Console pages for security keys: registering one (signed in), and the security-key step of signing in.

The browser side is ``static/webauthn.js`` (no inline script: the console's Content-Security-Policy allows
only its own files). JSON endpoints answer ``{"error": …}`` with 401/403 on refusal and never say more than
that the key's answer did not verify.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Cookie, Header, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from ledger.api import webauthn_keys as wa
from ledger.api.auth import issue_own_token
from ledger.api.console import Session, _check_csrf, _page, _refused, _session, private_cookie
from ledger.api.console_signin import PENDING_COOKIE, read_pending, signed_in
from ledger.api.deps import COOKIE, LockedNode
from ledger.errors import AuthError, FlagLedgerError

__all__ = ["router"]

log = logging.getLogger("flagledger.api.console")

router = APIRouter(prefix="/console", include_in_schema=False)

CEREMONY_COOKIE = "flagledger_webauthn"
Ceremony = Annotated[str | None, Cookie(alias=CEREMONY_COOKIE)]
Pending = Annotated[str | None, Cookie(alias=PENDING_COOKIE)]
Csrf = Annotated[str, Header(alias="X-CSRF", max_length=128)]
Credential = Annotated[dict[str, Any], Body(embed=True)]
SCRIPT = Path(__file__).parent / "static" / "webauthn.js"


@router.get("/static/webauthn.js")
def script() -> FileResponse:
    return FileResponse(SCRIPT, media_type="text/javascript")


def _ceremony(request: Request, ceremony: wa.Ceremony, path: str) -> JSONResponse:
    response = JSONResponse(ceremony.options)
    private_cookie(request, response, CEREMONY_COOKIE, ceremony.binding, max_age=wa.CEREMONY_TTL, path=path)
    return response


def _refusal(exc: FlagLedgerError) -> JSONResponse:
    log.warning("security-key step refused: %s", exc)
    status = 401 if isinstance(exc, AuthError) else 403
    return JSONResponse({"error": "セキュリティキーを確認できませんでした。"}, status_code=status)


# -- registering a key (signed in) -----------------------------------------------------------------------------
@router.get("/security-keys", response_class=HTMLResponse)
def keys_page(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        keys = node.app.security_keys(who.actor.agency, who.actor.staff)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, who, "security_keys.html", keys=[c[:12] for c in keys])


@router.post("/security-keys/options")
def register_options(request: Request, node: LockedNode, csrf: Csrf, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        return _ceremony(request, wa.begin_registration(node, request, who.actor), "/console/security-keys")
    except FlagLedgerError as exc:
        return _refusal(exc)


@router.post("/security-keys")
def register(
    request: Request,
    node: LockedNode,
    csrf: Csrf,
    credential: Credential,
    session: Session = None,
    binding: Ceremony = None,
) -> Response:
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        wa.finish_registration(node, request, who.actor, binding, credential)
    except FlagLedgerError as exc:
        return _refusal(exc)
    # the session in hand came without the key: from now on only a sign-in with the key opens the console
    response = JSONResponse({"registered": True, "next": "/console/login?done=key_registered"})
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- the security-key step of signing in -----------------------------------------------------------------------
@router.get("/login/key", response_class=HTMLResponse)
def key_step_page(request: Request, node: LockedNode, pending: Pending = None) -> Response:
    try:
        actor, _ = read_pending(node, pending)
    except AuthError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, None, "login_key.html", who_pending=actor)


@router.post("/login/key/options")
def sign_in_options(request: Request, node: LockedNode, pending: Pending = None) -> Response:
    try:
        actor, _ = read_pending(node, pending)
        return _ceremony(request, wa.begin_sign_in(node, request, actor), "/console/login/key")
    except FlagLedgerError as exc:
        return _refusal(exc)


@router.post("/login/key")
def sign_in_with_key(
    request: Request, node: LockedNode, credential: Credential, pending: Pending = None, binding: Ceremony = None
) -> Response:
    try:
        actor, via = read_pending(node, pending)
        wa.finish_sign_in(node, request, actor, binding, credential)
        token, who = issue_own_token(node, actor, via=f"{via}_key", factors=("key",))
    except FlagLedgerError as exc:
        return _refusal(exc)
    done = signed_in(request, node, token, who)
    response = JSONResponse({"next": "/console/"})
    for name, value in done.headers.items():
        if name == "set-cookie":
            response.headers.append("set-cookie", value)
    response.delete_cookie(PENDING_COOKIE, path="/console/login")
    response.delete_cookie(CEREMONY_COOKIE, path="/console/login/key")
    return response
