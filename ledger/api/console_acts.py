"""Each flag act in the console signed by the person's own security key: before a form that requests,
approves, rejects or executes is sent, ``static/webauthn.js`` asks here for the act's WebAuthn options — the
challenge is the SHA-256 of exactly what the act will sign (:func:`ledger.domain.staff_acts.act_statement`) —
then the browser asks the key and sends the assertion with the form. The act's own handler checks it
(:func:`ledger.api.webauthn_keys.act_proof`, then the app against the roster).

A person with no certified security key gets a 403 here, and their forms go without an assertion: the staff key
unlocked at their password sign-in signs (docs/staff-signing.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from ledger.api import webauthn_keys as wa
from ledger.api.auth import Principal
from ledger.api.console import Session, _check_csrf, _session
from ledger.api.console_forms import FlagRequestForm
from ledger.api.deps import LockedNode
from ledger.api.errors import error_body, status_for
from ledger.domain import bounds
from ledger.domain.staff_acts import APPROVED, EXECUTED, REJECTED
from ledger.domain.types import Action
from ledger.errors import FlagLedgerError, InputError

__all__ = ["router", "signed_options"]

router = APIRouter(prefix="/console", include_in_schema=False)

_ACTS = {"approve": (APPROVED, Action.APPROVE_FLAG), "reject": (REJECTED, Action.APPROVE_FLAG)}
_ACTS["execute"] = (EXECUTED, Action.EXECUTE_FLAG)


def _refusal(exc: FlagLedgerError) -> JSONResponse:
    body = error_body(exc)  # as the API words it: a 403 names its code only, never the value sent
    return JSONResponse({"error": str(body.get("message", "")), "code": exc.code}, status_code=status_for(exc))


def signed_options(
    request: Request,
    node: LockedNode,
    session: str | None,
    csrf: str,
    action: Action,
    statement: Callable[[Principal], bytes],
    fields: dict[str, str] | None = None,
) -> Response:
    """The WebAuthn options for one act of the year's pages (ledger/api/console_cases.py, console_guardians.py,
    console_year.py): the session, the form's CSRF token and ``action``'s role checked, then the challenge made
    over ``statement`` — what the app will check the assertion against. ``fields`` go back into the form (an id
    chosen here, so that the key signs the record it will name)."""
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, action)
        options = wa.begin_act(node, request, who.actor, statement(who))
    except FlagLedgerError as exc:
        return _refusal(exc)
    return JSONResponse({"publicKey": options, "fields": fields or {}})


@router.post("/requests/new/options")
def request_options(
    request: Request,
    node: LockedNode,
    form: FlagRequestForm,
    csrf: Annotated[str, Form(max_length=128)],
    session: Session = None,
) -> Response:
    """The request id is chosen here, so that the requester's key signs the request it will name."""
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.REQUEST_FLAG)
        rid = uuid4()
        statement = node.app.request_statement(
            who.actor, rid, form.subject, form.flags, kind=form.kind, reason=form.reason, explanation=form.explanation
        )
        options = wa.begin_act(node, request, who.actor, statement)
    except FlagLedgerError as exc:
        return _refusal(exc)
    return JSONResponse({"publicKey": options, "fields": {"request_id": str(rid)}})


@router.post("/approvals/{request_id}/{decision}/options")
def act_options(
    request: Request,
    node: LockedNode,
    request_id: UUID,
    decision: str,
    csrf: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=bounds.NOTE.max)] = "",
    session: Session = None,
) -> Response:
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        if decision not in _ACTS:
            raise InputError("unknown decision: approve, reject or execute", field="decision")
        act, action = _ACTS[decision]
        who.require(node, action)
        statement = node.app.act_statement_for(who.actor, request_id, act, reason if act == REJECTED else "")
        options = wa.begin_act(node, request, who.actor, statement)
    except FlagLedgerError as exc:
        return _refusal(exc)
    return JSONResponse({"publicKey": options, "fields": {}})
