"""The console's page of protection-body requests (docs/bodies.md): a body's staff see their own requests and
what the municipality did; a municipality's staff see the requests sent to it, each person by the
municipality's own 宛名番号 (never a pseudonym or an individual number), and answer one not yet acted on with a
flag request for what the body asked — signed like every request (the person's security key, or the staff key
their sign-in unlocked) and then approved and executed on 承認待ち, each step recorded for the body to read.
Agencies by name."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from ledger.api.auth import Principal
from ledger.api.console import ASSERTION_MAX, Session, _page, _refused, _session, console_act
from ledger.api.console_acts import signed_options
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import act_proof_for, signs_with_key
from ledger.domain.types import Action, AgencyKind
from ledger.errors import FlagLedgerError, NotFoundError

__all__ = ["router"]

Csrf = Annotated[str, Form(max_length=128)]

router = APIRouter(prefix="/console", include_in_schema=False)

OUTCOME_LABELS = {
    "sent": "未対応",
    "requested": "決裁中",
    "approved": "承認済み（設定待ち）",
    "rejected": "却下",
    "executed": "実施済み",
}
REASON_LABELS = {"dv": "DV", "stalking": "ストーカー", "child_abuse": "児童虐待", "other": "その他"}


@router.get("/body-requests", response_class=HTMLResponse)
def body_requests(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    people: dict[str, str] = {}
    try:
        who = _session(node, session)
        mine = AgencyKind(node.app.agency(who.actor.agency).kind).is_protection_body
        if mine:
            who.require(node, Action.SEND_BODY_REQUEST)
            rows = node.app.body_requests(who.actor)
        else:
            who.require(node, Action.REQUEST_FLAG)
            rows = node.app.body_inbox(who.actor)
            people = node.app.body_inbox_people(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    names: dict[str, str] = {}
    for row in rows:
        for code in (row["body"], row["municipality"]):
            names.setdefault(code, _name(node, code))
    context: dict[str, Any] = {"rows": rows, "mine": mine, "names": names, "people": people}
    return _page(
        request,
        node,
        who,
        "body_requests.html",
        outcome_labels=OUTCOME_LABELS,
        reason_labels=REASON_LABELS,
        sign_with_key=signs_with_key(node, who.actor),
        **context,
    )


@router.post("/body-requests/{body_request_id}/request/options")
def answer_options(
    request: Request, node: LockedNode, body_request_id: UUID, csrf: Csrf, session: Session = None
) -> Response:
    rid = uuid4()

    def statement(who: Principal) -> bytes:
        return node.app.body_request_statement(who.actor, rid, body_request_id)

    return signed_options(request, node, session, csrf, Action.REQUEST_FLAG, statement, {"request_id": str(rid)})


@router.post("/body-requests/{body_request_id}/request")
def answer(
    request: Request,
    node: LockedNode,
    body_request_id: UUID,
    csrf: Csrf,
    request_id: Annotated[UUID | None, Form()] = None,
    assertion: Annotated[str, Form(max_length=ASSERTION_MAX)] = "",
    session: Session = None,
) -> Response:
    """The municipality requests the flags the body asked for, with the body's request named (the body reads
    ``requested``); approval and execution follow on 承認待ち like any request."""

    def ask(who: Principal) -> str:
        proof = act_proof_for(node, request, who.actor, assertion, request_id, "request", "request_id")
        node.app.answer_body_request(who.actor, body_request_id, proof=proof, request_id=request_id)
        return "requested"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, ask, "/console/body-requests")


def _name(node: Any, code: str) -> str:
    try:
        return str(node.app.agency(code).name)
    except NotFoundError:  # an agency whose registration has not reached this node: its code, then
        return code
