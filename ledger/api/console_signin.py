"""Signing in to the console and out of it: with the person's own password, or through the agency's own identity
provider (:mod:`ledger.api.oidc`), then the second factor they registered; the session cookie holds a token
for them alone (nobody mints one for someone else), checked on every page.

The sign-in form has no session yet, so its CSRF field is derived from a random pre-sign-in cookie (another site
cannot sign a browser in under a session of its choosing); sign-out needs the session's field (another site
cannot sign staff out).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Cookie, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger.api import half_signed_in, oidc
from ledger.api.auth import Principal, issue_own_token, password_factor, required_factor, token_secret
from ledger.api.console import Session, _csrf, _page, _refused, _session, _staff, private_cookie
from ledger.api.deps import COOKIE, LockedNode
from ledger.app import Actor
from ledger.errors import AuthError, Code, FlagLedgerError, PermissionDenied
from ledger.runtime.bootstrap import Node

__all__ = ["router"]

log = logging.getLogger("flagledger.api.console")

router = APIRouter(prefix="/console", include_in_schema=False)

LOGIN_COOKIE = "flagledger_login"  # the pre-sign-in nonce the sign-in form's CSRF field is derived from
LoginNonce = Annotated[str | None, Cookie(alias=LOGIN_COOKIE)]
LOGIN_FORM_TTL = 600  # seconds a sign-in form stays usable
OIDC_COOKIE = "flagledger_oidc"  # binds a round trip through an identity provider to this browser
OidcState = Annotated[str | None, Cookie(alias=OIDC_COOKIE)]
PENDING_COOKIE = "flagledger_pending"  # the first factor passed, the security key still to come
PENDING_TTL = 300


def _login_csrf(node: Node, nonce: str) -> str:
    return hmac.new(token_secret(node), f"login\x00{nonce}".encode(), hashlib.sha256).hexdigest()


def login_page(request: Request, node: Node, status: int = 200, error: str | None = None) -> Response:
    """The sign-in form with a fresh pre-sign-in nonce cookie and the CSRF field derived from it."""
    nonce = secrets.token_hex(16)
    expired = request.query_params.get("expired") == "1"
    response = _page(
        request,
        node,
        None,
        "login.html",
        status=status,
        error=error,
        expired=expired,
        login_csrf=_login_csrf(node, nonce),
        providers=[(code, node.app.agency(code).name) for code in sorted(oidc.providers(node))],
        agencies=sorted(node.app.hosted),
    )
    private_cookie(request, response, LOGIN_COOKIE, nonce, max_age=LOGIN_FORM_TTL, path="/console")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, node: LockedNode) -> Response:
    return login_page(request, node)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    node: LockedNode,
    agency: Annotated[str, Form(max_length=32)],
    staff: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    nonce: LoginNonce = None,
) -> Response:
    """The person's own password (which also opens their staff key, held in this server once every factor is
    done, so what they do here carries their signature), then their second factor if they registered one: until
    it is done the key stays sealed (ledger/api/half_signed_in.py). Wrong passwords are recorded and lock the
    credential after five (ledger/app/credentials.py)."""
    if not nonce or not hmac.compare_digest(_login_csrf(node, nonce), csrf):
        error = "サインイン画面の有効期限が切れたか、この画面からの送信ではありません。画面を読み込み直してください。"
        return login_page(request, node, status=403, error=error)
    actor = Actor(agency.strip(), staff.strip())
    try:
        _, key = password_factor(node, actor.agency, actor.staff, password)
        need = required_factor(node, actor)
        if need is not None:
            return _second_step(request, node, actor, "password", need, half_signed_in.seal(key, PENDING_TTL + 30))
        token, who = issue_own_token(node, actor, via="password")
        node.app.hold_key(key)
    except FlagLedgerError as exc:
        log.warning("console sign-in refused for %s: %s", actor, exc)
        return login_page(request, node, status=401 if isinstance(exc, AuthError) else 403, error=str(exc))
    return signed_in(request, node, token, _staff(who))


def _second_step(request: Request, node: Node, actor: Actor, via: str, factor: str, sealed: str = "") -> Response:
    """The first factor is done and the person has a second one: on to it (ledger/api/console_keys.py).
    ``sealed``: what opens the staff key the password opened (ledger/api/half_signed_in.py), carried in the
    pending cookie until the second factor is done."""
    response = RedirectResponse("/console/login/key" if factor == "key" else "/console/login/code", status_code=303)
    value = pending_value(node, actor, via, sealed)
    private_cookie(request, response, PENDING_COOKIE, value, max_age=PENDING_TTL, path="/console/login")
    return response


def _pending_mac(node: Node, body: str) -> str:
    return hmac.new(token_secret(node), f"pending\x00{body}".encode(), hashlib.sha256).hexdigest()


def pending_value(node: Node, actor: Actor, via: str, sealed: str = "") -> str:
    body = ".".join([actor.agency, actor.staff, via, str(int(time.time())), sealed])
    return f"{body}.{_pending_mac(node, body)}"


def _pending(node: Node, value: str | None) -> tuple[Actor, str, str]:
    parts = (value or "").split(".")
    if len(parts) != 6 or not hmac.compare_digest(_pending_mac(node, ".".join(parts[:5])), parts[5]):
        raise AuthError("sign in first")
    if int(parts[3]) + PENDING_TTL < time.time():
        raise AuthError("the sign-in took too long; start again")
    return Actor(parts[0], parts[1]), parts[2], parts[4]


def read_pending(node: Node, value: str | None) -> tuple[Actor, str]:
    """Who passed the first factor in this browser, and how; AuthError if nobody did (or too long ago)."""
    actor, via, _ = _pending(node, value)
    return actor, via


def _hold_sealed_key(request: Request, node: Node, actor: Actor) -> None:
    """The second factor is done: hold the staff key the password step sealed for ``actor`` in this browser
    (none after an identity provider's sign-in, which opens no key: ``POST /api/v1/staff-key/unlock``)."""
    try:
        who, _, sealed = _pending(node, request.cookies.get(PENDING_COOKIE))
    except AuthError:
        return
    key = half_signed_in.take(sealed, actor) if sealed and who == actor else None
    if key is not None:
        node.app.hold_key(key)


def signed_in(request: Request, node: Node, token: str, who: Principal) -> Response:
    """Hand the browser its session cookie and go to the home page; after a second factor, the staff key its
    password step sealed is held from now on."""
    if who.factors:
        _hold_sealed_key(request, node, who.actor)
    response = RedirectResponse("/console/", status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    response.delete_cookie(OIDC_COOKIE, path="/console/oidc")
    max_age = max(0, int((who.expires_at - node.app.clock()).total_seconds()))
    # Secure always, unless configured for plain-HTTP local development (ledger/api/settings.py); the scheme
    # reflects X-Forwarded-Proto only when the proxy is trusted by configuration
    private_cookie(request, response, COOKIE, token, max_age=max_age, path="/console")
    return response


@router.post("/logout")
def logout(
    request: Request,
    node: LockedNode,
    csrf: Annotated[str, Form(max_length=128)] = "",
    session: Session = None,
) -> Response:
    try:
        who = _session(node, session)
    except AuthError:
        who = None  # no live session: nothing another site could end, the cookie is cleared below
    if who is not None and not hmac.compare_digest(_csrf(node, who), csrf):
        return _refused(
            request,
            node,
            who,
            PermissionDenied("the form is stale or not from this console; reload the page", code=Code.CSRF),
        )
    if who is not None:  # the staff key unlocked at sign-in is forgotten with the session
        node.app.lock(who.actor.agency, who.actor.staff)
    response = RedirectResponse("/console/login?done=signed_out", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- through the agency's identity provider --------------------------------------------------------------------
def _callback_uri(request: Request, agency: str) -> str:
    return str(request.url_for("oidc_callback", agency=agency))


@router.get("/oidc/{agency}/start")
def oidc_start(request: Request, node: LockedNode, agency: str) -> Response:
    try:
        where, binding = oidc.begin(node, agency, _callback_uri(request, agency))
    except FlagLedgerError as exc:
        log.warning("identity-provider sign-in for %s not started: %s", agency, exc)
        return login_page(request, node, status=404 if exc.code == Code.NOT_FOUND else 502, error=str(exc))
    response = RedirectResponse(where, status_code=303)
    private_cookie(
        request, response, OIDC_COOKIE, binding, max_age=oidc.STATE_TTL, path="/console/oidc", samesite="lax"
    )
    return response


@router.get("/oidc/{agency}/callback", name="oidc_callback")
def oidc_callback(
    request: Request,
    node: LockedNode,
    agency: str,
    binding: OidcState = None,
    state: str = "",
    code: str = "",
    error: str = "",
) -> Response:
    try:
        if error or not code:
            raise AuthError("the identity provider did not sign you in")
        actor = oidc.finish(node, agency, binding, state, code, _callback_uri(request, agency))
        need = required_factor(node, actor)
        if need is not None:
            return _second_step(request, node, actor, "oidc", need)
        token, who = issue_own_token(node, actor, via="oidc")
    except FlagLedgerError as exc:
        # the reason is for the operator's log; the page says only that sign-in failed
        log.warning("identity-provider sign-in at %s refused: %s", agency, exc)
        return login_page(request, node, status=401, error="サインインできませんでした。もう一度お試しください。")
    return signed_in(request, node, token, who)
