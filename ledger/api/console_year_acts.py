"""Acting on the 年間業務 page's items (issue #21, docs/year.md): each item of the year queue has its form here,
and each form calls the app's own command (ledger/app/handover.py, year.py), so the app's rules — four eyes,
the handover guard, the last-holder rule — hold as on the command line.

* a move (転出/転入) recorded at either municipality; the new municipality's **takeover** (引継ぎ) of a handover
  is a flag request through its own chain, for the flags it lacks (approved and executed under 承認待ち);
* an emergency flag's **co-approval**; a support-measure term's **application**, **extension**, **lapse**
  (proposed, then approved by another person); a **named risk** for a release before the new municipality holds.

Signed acts (takeover, co-approval, named risk) are signed as every console flag act: the person's security key
(options from ``…/options``) or, with no certified key, the staff key unlocked at sign-in. Forms name an item by
its id (move, term, request, decision), never by a person's pseudonym; a number is typed only for a new record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from ledger.api.auth import Principal
from ledger.api.console import ASSERTION_MAX, Session, console_act
from ledger.api.console_acts import signed_options
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import act_proof, act_proof_for
from ledger.domain import bounds
from ledger.domain.staff_acts import APPROVED
from ledger.domain.types import Action
from ledger.errors import InputError, NotFoundError
from ledger.runtime.bootstrap import Node

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

BACK = "/console/year"
Number = Annotated[str, Form(max_length=bounds.SUBJECT.max)]
Csrf = Annotated[str, Form(max_length=128)]
Note = Annotated[str, Form(max_length=bounds.NOTE.max)]
Assertion = Annotated[str, Form(max_length=ASSERTION_MAX)]
Day = Annotated[date, Form()]
TAKEOVER_NOTE = "転入による引継ぎ"


def _item(node: Node, who: Principal, kind: str, key: str, value: str) -> dict[str, Any]:
    """The year queue's item of ``kind`` whose ``key`` is ``value`` — only what the queue shows is acted on."""
    for item in node.app.year_queue(who.actor).get(kind, []):
        if item.get(key) == value:
            return dict(item)
    raise NotFoundError("that item is not in your agency's year queue (done already, or not yours)")


# -- moves and the takeover ------------------------------------------------------------------------------------
@router.post("/year/moves")
def record_move(
    request: Request,
    node: LockedNode,
    subject: Number,
    to_agency: Annotated[str, Form(max_length=16)],
    moved_on: Day,
    csrf: Csrf,
    session: Session = None,
) -> Response:
    """転出 (at the old municipality) or 転入 (``to_agency`` is this one). Recorded only for a person protected
    somewhere, as over the API; the receiving municipality's queue then asks it to take over."""

    def record(who: Principal) -> str:
        mid = node.app.record_move(who.actor, subject, to_agency=to_agency.strip(), moved_on=moved_on)
        return "move_recorded" if mid is not None else "move_not_shared"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, record, BACK)


def _takeover(node: Node, who: Principal, move_id: UUID) -> tuple[str, list[str]]:
    h = _item(node, who, "handovers", "move_id", str(move_id))
    return str(h["subject"]), list(h["flags_to_take_over"])


@router.post("/year/handovers/{move_id}/options")
def takeover_options(
    request: Request, node: LockedNode, move_id: UUID, csrf: Csrf, session: Session = None
) -> Response:
    rid = uuid4()

    def statement(who: Principal) -> bytes:
        subject, flags = _takeover(node, who, move_id)
        return node.app.request_statement(who.actor, rid, subject, flags, explanation=TAKEOVER_NOTE)

    return signed_options(request, node, session, csrf, Action.REQUEST_FLAG, statement, {"request_id": str(rid)})


@router.post("/year/handovers/{move_id}")
def take_over(
    request: Request,
    node: LockedNode,
    move_id: UUID,
    csrf: Csrf,
    request_id: Annotated[UUID | None, Form()] = None,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    """The receiving municipality asks, through its own chain, for the flags it does not hold yet."""

    def ask(who: Principal) -> str:
        subject, flags = _takeover(node, who, move_id)
        proof = act_proof_for(node, request, who.actor, assertion, request_id, "request", "request_id")
        rid = request_id if proof is not None else None
        node.app.request_flags(who.actor, subject, flags, explanation=TAKEOVER_NOTE, proof=proof, request_id=rid)
        return "requested"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, ask, BACK)


# -- an emergency flag's co-approval --------------------------------------------------------------------------
def _provisional(node: Node, who: Principal, request_id: UUID) -> UUID:
    return UUID(_item(node, who, "provisional", "request_id", str(request_id))["request_id"])


@router.post("/year/provisional/{request_id}/options")
def co_approve_options(
    request: Request, node: LockedNode, request_id: UUID, csrf: Csrf, session: Session = None
) -> Response:
    def statement(who: Principal) -> bytes:
        return node.app.act_statement_for(who.actor, _provisional(node, who, request_id), APPROVED, "")

    return signed_options(request, node, session, csrf, Action.APPROVE_FLAG, statement)


@router.post("/year/provisional/{request_id}")
def co_approve(
    request: Request,
    node: LockedNode,
    request_id: UUID,
    csrf: Csrf,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    def approve(who: Principal) -> str:
        rid = _provisional(node, who, request_id)
        node.app.co_approve_provisional(who.actor, rid, proof=act_proof(node, request, who.actor, assertion))
        return "approved"

    return console_act(request, node, session, csrf, Action.APPROVE_FLAG, approve, BACK)


# -- the support-measure term ---------------------------------------------------------------------------------
@router.post("/year/terms")
def record_application(
    request: Request, node: LockedNode, subject: Number, applied_on: Day, csrf: Csrf, session: Session = None
) -> Response:
    def record(who: Principal) -> str:
        node.app.record_application(who.actor, subject, applied_on)
        return "term_recorded"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, record, BACK)


_TERM_ACTS: dict[str, Action] = {
    "extend": Action.REQUEST_FLAG,
    "lapse": Action.REQUEST_FLAG,
    "lapse-approve": Action.APPROVE_FLAG,
}


@router.post("/year/terms/{term_id}/{act}")
def term_act(
    request: Request,
    node: LockedNode,
    term_id: UUID,
    act: str,
    csrf: Csrf,
    requested_on: Annotated[date | None, Form()] = None,
    note: Note = "",
    session: Session = None,
) -> Response:
    """延長申出 (``extend``), a proposed lapse (``lapse``) and its approval by another person (``lapse-approve``):
    each on a term the year queue shows. An approved lapse ends the term, never a flag."""

    def lapse(who: Principal, subject: str) -> str:
        node.app.propose_lapse(who.actor, subject, note)
        return "lapse_proposed"

    def lapse_approve(who: Principal, subject: str) -> str:
        node.app.approve_lapse(who.actor, subject, note)
        return "lapse_approved"

    acts: dict[str, Callable[[Principal, str], str]] = {
        "extend": lambda who, s: _extend(node, who, s, requested_on),
        "lapse": lapse,
        "lapse-approve": lapse_approve,
    }

    def run(who: Principal) -> str:
        if act not in acts:
            raise InputError("unknown act: extend, lapse or lapse-approve", field="act")
        return acts[act](who, str(_item(node, who, "terms", "term_id", str(term_id))["subject"]))

    return console_act(request, node, session, csrf, _TERM_ACTS.get(act, Action.REQUEST_FLAG), run, BACK)


def _extend(node: Node, who: Principal, subject: str, requested_on: date | None) -> str:
    if requested_on is None:
        raise InputError("延長申出の日付を入力してください (the date of the extension request)", field="requested_on")
    node.app.request_extension(who.actor, subject, requested_on)
    return "term_extended"


# -- a decision naming the risk of releasing before the new municipality holds ---------------------------------
@router.post("/year/risks/options")
def risk_options(
    request: Request,
    node: LockedNode,
    subject: Number,
    flags: Annotated[list[str], Form(max_length=4)],
    risk: Note,
    csrf: Csrf,
    session: Session = None,
) -> Response:
    did = uuid4()

    def statement(who: Principal) -> bytes:
        return node.app.risk_statement(who.actor, did, subject=subject, flags=flags, risk=risk)

    return signed_options(request, node, session, csrf, Action.REQUEST_FLAG, statement, {"decision_id": str(did)})


@router.post("/year/risks")
def propose_risk(
    request: Request,
    node: LockedNode,
    subject: Number,
    flags: Annotated[list[str], Form(max_length=4)],
    risk: Note,
    csrf: Csrf,
    decision_id: Annotated[UUID | None, Form()] = None,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    def propose(who: Principal) -> str:
        proof = act_proof_for(node, request, who.actor, assertion, decision_id, "decision", "decision_id")
        node.app.propose_release_risk(who.actor, subject, flags, risk, proof=proof, decision_id=decision_id)
        return "proposed"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, propose, BACK)


@router.post("/year/risks/{decision_id}/approve/options")
def risk_approve_options(
    request: Request, node: LockedNode, decision_id: UUID, csrf: Csrf, session: Session = None
) -> Response:
    def statement(who: Principal) -> bytes:
        return node.app.risk_statement(who.actor, decision_id)

    return signed_options(request, node, session, csrf, Action.APPROVE_FLAG, statement)


@router.post("/year/risks/{decision_id}/approve")
def approve_risk(
    request: Request,
    node: LockedNode,
    decision_id: UUID,
    csrf: Csrf,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    def approve(who: Principal) -> str:
        node.app.approve_release_risk(who.actor, decision_id, proof=act_proof(node, request, who.actor, assertion))
        return "decided"

    return console_act(request, node, session, csrf, Action.APPROVE_FLAG, approve, BACK)
