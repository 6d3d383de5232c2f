"""The console's flag-request page: a requester asks for flags to be set on (or released from) a person, as
the first of the four-eyes steps. The request carries the requester's own signature (their security key's assertion, or
— with no certified key — their staff key, unlocked when they signed in here); approvers and the operator act
on it under 承認待ち."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger.api.console import ASSERTION_MAX, Session, _check_csrf, _page, _refused, _session
from ledger.api.console_forms import FlagRequestForm
from ledger.api.console_references import record_reference
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import act_proof_for, signs_with_key
from ledger.domain.types import Action, Flag, Reason, RequestKind
from ledger.errors import FlagLedgerError
from ledger.runtime.reference_numbers import clean_reference

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
        sign_with_key=signs_with_key(node, who.actor),
    )


@router.post("/requests/new", response_class=HTMLResponse)
def request_flags(
    request: Request,
    node: LockedNode,
    form: FlagRequestForm,
    csrf: Annotated[str, Form(max_length=128)],
    request_id: Annotated[UUID | None, Form()] = None,
    reference: Annotated[str, Form(max_length=60)] = "",
    assertion: Annotated[str, Form(max_length=ASSERTION_MAX)] = "",
    session: Session = None,
) -> Response:
    """Signed by the requester's security key (``assertion`` over the request named ``request_id``, both
    from ledger/api/console_acts.py), or — with no certified key — by their unlocked staff key. A 宛名番号 given
    with it is checked before the request is made and kept (locally) once it is."""
    who = None
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.REQUEST_FLAG)
        if reference.strip():
            clean_reference(reference)  # a mistyped number refuses the form before anything is requested
        proof = act_proof_for(node, request, who.actor, assertion, request_id, "request", "request_id")
        node.app.request_flags(
            who.actor,
            form.subject,
            form.flags,
            kind=form.kind,
            reason=form.reason,
            explanation=form.explanation,
            proof=proof,
            request_id=request_id if proof is not None else None,
        )
        if reference.strip():
            record_reference(node, who.actor, form.subject, reference)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return RedirectResponse("/console/approvals?done=requested", status_code=303)
