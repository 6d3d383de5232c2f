"""The staff console: server-rendered pages with Japanese labels (English in the code).

Sign-in (ledger/api/console_signin.py: the person's password, or the agency's identity provider, then their
second factor) gives a session cookie (HttpOnly, SameSite=Strict,
Path=/console) that holds the same token, so the token's expiry, roles and the staff member's standing are
checked on every page. Every form carries a CSRF field derived from the session; the sign-in form, which has
no session yet, carries one derived from a random pre-sign-in cookie (so another site cannot sign a browser in
under a token of its choosing), and sign-out needs the session's field (so another site cannot sign staff out).
Pages never show which agency protects a person to staff of other agencies (the views filter, the templates
only render).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Cookie, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from consumers import linkage_queue
from ledger.api import console_held
from ledger.api.auth import Principal, required_factor, token_secret, verify_token
from ledger.api.console_names import namers
from ledger.api.deps import COOKIE, LockedNode
from ledger.api.errors import error_body, status_for
from ledger.api.settings import HttpSettings
from ledger.api.webauthn_keys import act_proof, signs_with_key
from ledger.domain import bounds
from ledger.domain.types import Action
from ledger.errors import AuthError, Code, FlagLedgerError, InputError, PermissionDenied
from ledger.runtime.bootstrap import Node
from projections import views

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)
ASSERTION_MAX = 8192  # a WebAuthn assertion as webauthn.js sends it (JSON of base64url fields)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

FLAG_LABELS = {"NON_DISCLOSURE": "不開示", "NO_AUTO_RESPONSE": "自動応答不可"}
APPLICANT_LABELS = {"protected_person": "保護対象者本人", "known_perpetrator": "加害者", "unknown": "不明"}
KIND_LABELS = {"set": "設定", "release": "解除", "renew": "更新"}
STATUS_LABELS = {
    "pending": "承認待ち",
    "approved": "承認済み（実行待ち）",
    "rejected": "却下",
    "executed": "実行済み",
    "answered": "回答済み",
    "in_progress": "確認中",
    "not_provided": "不提供",
}
NOTICES = {
    "requested": "申請しました。承認者の承認を待っています。",
    "approved": "承認しました。",
    "rejected": "却下しました。",
    "executed": "実行しました。",
    "proposed": "判断案を登録しました。承認者の承認を待っています。",
    "decided": "判断を確定しました。",
    "signed_out": "サインアウトしました。",
    "numbered": "宛名番号を登録しました。",
    "proxy_registered": "代理人を登録しました。",
    "proxy_cancelled": "代理人の登録を取り消しました。",
    "proxy_cancellation_sent": "代理人の登録の取消しを記録しました。連携の中継点が、登録した機関を問わず取り消します。",
    "case_opened": "受付を登録しました。被害者と同伴者のフラグを申請してください。",
    "companion_proposed": "同伴者のフラグを申請しました。承認・実行されると、同伴者も保護されます。",
    "bar_proposed": "制限を申請しました。承認者の承認を待っています。",
    "bar_approved": "制限を承認しました。制限は有効です。",
    "lift_proposed": "制限の解除を申請しました。承認者の承認を待っています。",
    "bar_lifted": "制限を解除しました。",
    "proxy_approval_proposed": "代理人の閲覧の承認を申請しました。承認者の承認を待っています。",
    "proxy_approval_approved": "代理人の閲覧を承認しました。連携の中継点を経てマイナポータルに伝わります。",
    "proxy_withdrawal_proposed": "閲覧の承認の取消しを申請しました。承認者の承認を待っています。",
    "proxy_approval_withdrawn": "閲覧の承認を取り消しました。",
    "move_recorded": "転居を記録しました。転入先の年間業務に引継ぎが表示されます。",
    "move_not_shared": "転居は記録しませんでした（保護されていない人の転居は共有しません）。",
    "term_recorded": "申出を記録しました（期間は1年です）。",
    "term_extended": "延長申出を記録しました。フラグの更新は、更新の申請で行います。",
    "lapse_proposed": "期間の終了を提案しました。別の承認者の承認を待っています。",
    "lapse_approved": "期間の終了を承認しました（フラグは解除されません。解除は解除の申請で行います）。",
    "key_registered": "セキュリティキーを登録しました。登録したキーで、もう一度サインインしてください。",
    "totp_registered": "ワンタイムコードを登録しました。コードを使って、もう一度サインインしてください。",
}
Session = Annotated[str | None, Cookie(alias=COOKIE)]


def _csrf(node: Node, who: Principal) -> str:
    return hmac.new(token_secret(node), f"csrf\x00{who.token_id}".encode(), hashlib.sha256).hexdigest()


def private_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int, path: str, samesite: str = "strict"
) -> None:
    """Set a console cookie: HttpOnly, and Secure always unless configured for plain-HTTP local development
    (ledger/api/settings.py; the scheme reflects X-Forwarded-Proto only when the proxy is trusted)."""
    settings: HttpSettings = request.app.state.http
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite=samesite,  # type: ignore[arg-type]
        secure=settings.cookie_secure(request.url.scheme),
    )


def _allowed(node: Node, who: Principal | None) -> set[str]:
    """Actions the caller may take, so pages offer only the buttons that would work (the server still checks)."""
    can: set[str] = set()
    if who is None:
        return can
    for action in Action:
        try:
            who.require(node, action)
            can.add(action.value)
        except FlagLedgerError:
            pass
    return can


def _page(
    request: Request, node: Node, who: Principal | None, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    ctx = {
        "who": who,
        "can": _allowed(node, who),
        "csrf": _csrf(node, who) if who else "",
        "flag_labels": FLAG_LABELS,
        "applicant_labels": APPLICANT_LABELS,
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        **namers(node, who.actor.agency if who else None),
        **context,
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def _refused(request: Request, node: Node, who: Principal | None, exc: FlagLedgerError) -> Response:
    if isinstance(exc, AuthError):
        return RedirectResponse("/console/login?expired=1", status_code=303)
    body = error_body(exc)
    return _page(request, node, who, "error.html", status=status_for(exc), error=body)


def _session(node: Node, token: str | None) -> Principal:
    if not token:
        raise AuthError("no console session")
    who = _staff(verify_token(node, token))
    # a token that did not come through the second step (one minted by an administrator, copied into the
    # cookie by hand) opens no console page for someone who has registered a second factor
    need = required_factor(node, who.actor)
    if need is not None and not {"key", need} & set(who.factors):
        raise AuthError("this staff member signs in with a second factor")
    return who


def _staff(who: Principal) -> Principal:
    """The console is for staff: a system account (portal, gateway) has no session here (issue 18)."""
    if who.is_system:
        raise AuthError("the console is for staff members: a system account cannot sign in here")
    return who


def _check_csrf(node: Node, who: Principal, value: str) -> None:
    if not hmac.compare_digest(_csrf(node, who), value):
        raise PermissionDenied("the form is stale or not from this console; reload the page", code=Code.CSRF)


def console_act(
    request: Request,
    node: Node,
    session: str | None,
    csrf: str,
    action: Action,
    act: Callable[[Principal], str],
    back: str,
) -> Response:
    """One form post of the console: the signed-in person, the form's CSRF token and ``action``'s role are
    checked before ``act`` runs; ``act`` returns what was done (the next page's notice) and the browser goes back
    to ``back``. A refusal renders the refusal page, and what was refused changed nothing."""
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, action)
        done = act(who)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return RedirectResponse(f"{back}?done={done}", status_code=303)


# -- home (sign-in and sign-out: ledger/api/console_signin.py) -------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        queue = linkage_queue.work_queue(node, who.actor, held=False)  # hub mode: escalations, consultations
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, who, "home.html", queue=queue)


# -- counter ---------------------------------------------------------------------------------------------------
@router.get("/counter", response_class=HTMLResponse)
def counter_form(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        who.require(node, Action.COUNTER_LOOKUP)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, who, "counter.html", view=None)


@router.post("/counter", response_class=HTMLResponse)
def counter(
    request: Request,
    node: LockedNode,
    subject: Annotated[str, Form(max_length=bounds.SUBJECT.max)],
    csrf: Annotated[str, Form(max_length=128)],
    session: Session = None,
) -> Response:
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.COUNTER_LOOKUP)
        view = views.counter_view(node, who.actor, subject)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(request, node, who, "counter.html", view=view)


# -- approvals ----------------------------------------------------------------------------------------------------
@router.get("/approvals", response_class=HTMLResponse)
def approvals(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        queue = views.work_queue(node, who.actor, held=False)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, who, "approvals.html", queue=queue, sign_with_key=signs_with_key(node, who.actor))


@router.post("/approvals/{request_id}/{decision}")
def decide_flag_request(
    request: Request,
    node: LockedNode,
    request_id: UUID,
    decision: str,
    csrf: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=bounds.NOTE.max)] = "",
    assertion: Annotated[str, Form(max_length=ASSERTION_MAX)] = "",
    session: Session = None,
) -> Response:
    """Each act signed by the person's security key (``assertion``, made over the act's statement; see
    ledger/api/console_acts.py), or — for a person with no certified key — by their unlocked staff key."""
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        if decision == "approve":
            who.require(node, Action.APPROVE_FLAG)
            node.app.approve_request(who.actor, request_id, proof=act_proof(node, request, who.actor, assertion))
            done = "approved"
        elif decision == "reject":
            who.require(node, Action.APPROVE_FLAG)
            if not reason.strip():
                raise InputError("却下の理由を入力してください (a reason is required to reject)")
            proof = act_proof(node, request, who.actor, assertion)
            node.app.reject_request(who.actor, request_id, reason, proof=proof)
            done = "rejected"
        elif decision == "execute":
            who.require(node, Action.EXECUTE_FLAG)
            node.app.execute_request(who.actor, request_id, proof=act_proof(node, request, who.actor, assertion))
            done = "executed"
        else:
            raise InputError("unknown decision: approve, reject or execute", field="decision")
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return RedirectResponse(f"/console/approvals?done={done}", status_code=303)


# -- held provision requests ------------------------------------------------------------------------------------------
@router.get("/held", response_class=HTMLResponse)
def held(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        queue = views.work_queue(node, who.actor)
        if not queue.held and not _decides(node, who):
            raise PermissionDenied("only reviewers and approvers see held requests", code=Code.ROLE_NOT_PERMITTED)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(
        request,
        node,
        who,
        "held.html",
        queue=queue,
        cases=console_held.cases(node),
        basis_labels=console_held.BASIS_LABELS,
        advice_labels=console_held.ADVICE_LABELS,
    )


def _decides(node: Node, who: Principal) -> bool:
    for action in (Action.REVIEW_HELD, Action.APPROVE_HELD):
        try:
            who.require(node, action)
            return True
        except PermissionDenied:
            pass
    return False


@router.post("/held/{request_id}/propose")
def propose(
    request: Request,
    node: LockedNode,
    request_id: UUID,
    csrf: Annotated[str, Form(max_length=128)],
    decision: Annotated[str, Form(max_length=16)],
    applicant_check: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=bounds.NOTE.max)] = "",
    session: Session = None,
) -> Response:
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.REVIEW_HELD)
        # hub mode: a request routed for staff is signed with the reviewer's staff key (console_held)
        console_held.propose(node, who, request_id, decision, applicant_check, note)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return RedirectResponse("/console/held?done=proposed", status_code=303)


@router.post("/held/{request_id}/approve")
def approve_decision(
    request: Request,
    node: LockedNode,
    request_id: UUID,
    csrf: Annotated[str, Form(max_length=128)],
    proposal_version: Annotated[int, Form(ge=1, le=2**31 - 1)],
    session: Session = None,
) -> Response:
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.APPROVE_HELD)
        # the proposal the page showed: one proposed again since is refused (stale_proposal), not approved
        console_held.approve(node, who, request_id, proposal_version)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return RedirectResponse("/console/held?done=decided", status_code=303)


# -- reviews due, timeline ------------------------------------------------------------------------------------------
@router.get("/reviews", response_class=HTMLResponse)
def reviews(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        queue = views.work_queue(node, who.actor, held=False)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, who, "reviews.html", queue=queue, today=node.app.clock().date())


@router.get("/timeline", response_class=HTMLResponse)
def timeline_form(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        who.require(node, Action.AUDIT)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(request, node, who, "timeline.html", entries=None, subject="")


@router.post("/timeline", response_class=HTMLResponse)
def timeline(
    request: Request,
    node: LockedNode,
    subject: Annotated[str, Form(max_length=bounds.SUBJECT.max)],
    purpose: Annotated[str, Form(max_length=bounds.PURPOSE.max)],
    csrf: Annotated[str, Form(max_length=128)],
    session: Session = None,
) -> Response:
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.AUDIT)
        entries = views.subject_timeline(node, who.actor, subject, purpose)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(request, node, who, "timeline.html", entries=entries, subject=node.app.subject(subject))
