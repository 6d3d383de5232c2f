"""Console pages for one-time codes (TOTP), where the agency allows them: registering an authenticator app
(signed in), and the code step of signing in. Wrong codes are recorded and lock the codes after five in a row
(:mod:`ledger.domain.one_time_codes`)."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Annotated

import pyotp
from fastapi import APIRouter, Cookie, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger.api.auth import issue_own_token
from ledger.api.console import Session, _check_csrf, _page, _refused, _session
from ledger.api.console_signin import PENDING_COOKIE, read_pending, signed_in
from ledger.api.deps import COOKIE, LockedNode
from ledger.errors import AuthError, FlagLedgerError

__all__ = ["router"]

log = logging.getLogger("flagledger.api.console")

router = APIRouter(prefix="/console", include_in_schema=False)

Pending = Annotated[str | None, Cookie(alias=PENDING_COOKIE)]
SixDigits = Annotated[str, Form(min_length=6, max_length=8)]


@router.get("/one-time-codes", response_class=HTMLResponse)
def codes_page(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    allowed = node.app.totp_allowed(who.actor.agency)
    secret = pyotp.random_base32() if allowed else ""
    label = urllib.parse.quote(f"flagledger:{who.actor.agency}/{who.actor.staff}")
    uri = f"otpauth://totp/{label}?secret={secret}&issuer=flagledger" if allowed else ""
    return _page(request, node, who, "one_time_codes.html", allowed=allowed, secret=secret, uri=uri)


@router.post("/one-time-codes", response_class=HTMLResponse)
def register_codes(
    request: Request,
    node: LockedNode,
    secret: Annotated[str, Form(max_length=64)],
    code: SixDigits,
    csrf: Annotated[str, Form(max_length=128)],
    session: Session = None,
) -> Response:
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        node.app.register_one_time_codes(who.actor, secret, code)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    # the session in hand came without the code: from now on only a sign-in with a code opens the console
    response = RedirectResponse("/console/login?done=totp_registered", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/login/code", response_class=HTMLResponse)
def code_step_page(request: Request, node: LockedNode, pending: Pending = None) -> Response:
    try:
        actor, _ = read_pending(node, pending)
    except AuthError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, None, "login_code.html", who_pending=actor, error=None)


@router.post("/login/code", response_class=HTMLResponse)
def sign_in_with_code(request: Request, node: LockedNode, code: SixDigits, pending: Pending = None) -> Response:
    try:
        actor, via = read_pending(node, pending)
    except AuthError as exc:
        return _refused(request, node, None, exc)
    try:
        node.app.use_one_time_code(actor, code)
        token, who = issue_own_token(node, actor, via=f"{via}_totp", factors=("totp",))
    except FlagLedgerError as exc:
        log.warning("one-time code refused for %s: %s", actor, exc)
        return _page(request, node, None, "login_code.html", status=401, who_pending=actor, error=str(exc))
    response = signed_in(request, node, token, who)
    response.delete_cookie(PENDING_COOKIE, path="/console/login")
    return response
