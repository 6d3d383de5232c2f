"""The console's flag-request page: a requester asks for flags to be set on (or released from) a person, as
the first of the four-eyes steps. The request carries the requester's own signature (their staff key,
unlocked when they signed in here); approvers and the operator act on it under 承認待ち."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger.api.console import Session, _check_csrf, _page, _refused, _session
from ledger.api.deps import LockedNode
from ledger.domain import bounds
from ledger.domain.types import Action, Flag, Reason, RequestKind
from ledger.errors import FlagLedgerError

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

REASON_LABELS = {
    "dv": "配偶者等からの暴力（DV）",
    "stalking": "ストーカー行為等",
    "child_abuse": "児童虐待等",
    "other": "その他",
}


@router.get("/requests/new", response_class=HTMLResponse)
def request_form(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        who.require(node, Action.REQUEST_FLAG)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(
        request,
        node,
        who,
        "request_new.html",
        kinds=[k.value for k in RequestKind],
        flags=[f.value for f in Flag],
        reasons=[(r.value, REASON_LABELS.get(r.value, r.value)) for r in Reason],
    )


@router.post("/requests/new", response_class=HTMLResponse)
def request_flags(
    request: Request,
    node: LockedNode,
    subject: Annotated[str, Form(max_length=bounds.SUBJECT.max)],
    csrf: Annotated[str, Form(max_length=128)],
    flags: Annotated[list[str], Form(max_length=4)],
    kind: Annotated[str, Form(max_length=16)] = RequestKind.SET.value,
    reason: Annotated[str, Form(max_length=32)] = Reason.DV.value,
    explanation: Annotated[str, Form(max_length=bounds.NOTE.max)] = "",
    session: Session = None,
) -> Response:
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.REQUEST_FLAG)
        node.app.request_flags(who.actor, subject, flags, kind=kind, reason=reason, explanation=explanation)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return RedirectResponse("/console/approvals?done=requested", status_code=303)
