"""The console's guardian-bar page (親権者等の制限, issue #21, docs/year.md §5): a requester proposes that a guardian
or proxy may not act for a protected person, another person (an approver) puts it in force; lifting it takes two
people as well (ledger/app/guardians.py). Each act is signed by its person — their security key's assertion
(options from ``…/options``) or, with no certified key, the staff key their sign-in unlocked. Persons by the
agency's 宛名番号 only; forms name a bar by its id."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from ledger.api.auth import Principal
from ledger.api.console import ASSERTION_MAX, Session, _page, _refused, _session, console_act
from ledger.api.console_acts import signed_options
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import act_proof, act_proof_for, signs_with_key
from ledger.domain import bounds
from ledger.domain.staff_acts import APPROVED, EXECUTED, REQUESTED
from ledger.domain.types import Action
from ledger.errors import FlagLedgerError, InputError

__all__ = ["RELATION_LABELS", "router"]

router = APIRouter(prefix="/console", include_in_schema=False)

RELATION_LABELS = {"parent": "親権者", "legal_guardian": "法定代理人", "proxy": "代理人"}
BACK = "/console/guardian-bars"
Number = Annotated[str, Form(max_length=bounds.SUBJECT.max)]
Csrf = Annotated[str, Form(max_length=128)]
Relation = Annotated[str, Form(max_length=16)]
Assertion = Annotated[str, Form(max_length=ASSERTION_MAX)]
# act → (the role it needs, what its person signs)
_ACTS = {
    "approve": (Action.APPROVE_FLAG, APPROVED),
    "lift": (Action.REQUEST_FLAG, REQUESTED),
    "lift-approve": (Action.APPROVE_FLAG, EXECUTED),
}


def _act(act: str) -> tuple[Action, str]:
    if act not in _ACTS:
        raise InputError("unknown act: approve, lift or lift-approve", field="act")
    return _ACTS[act]


@router.get("/guardian-bars", response_class=HTMLResponse)
def bars(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        listed = node.app.guardian_bars(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(
        request,
        node,
        who,
        "guardian_bars.html",
        bars=listed,
        relation_labels=RELATION_LABELS,
        sign_with_key=signs_with_key(node, who.actor),
    )


@router.post("/guardian-bars/options")
def propose_options(
    request: Request,
    node: LockedNode,
    subject: Number,
    guardian: Number,
    csrf: Csrf,
    relation: Relation = "parent",
    session: Session = None,
) -> Response:
    bid = uuid4()

    def statement(who: Principal) -> bytes:
        return node.app.bar_statement(who.actor, bid, REQUESTED, subject=subject, guardian=guardian, relation=relation)

    return signed_options(request, node, session, csrf, Action.REQUEST_FLAG, statement, {"bar_id": str(bid)})


@router.post("/guardian-bars")
def propose(
    request: Request,
    node: LockedNode,
    subject: Number,
    guardian: Number,
    csrf: Csrf,
    relation: Relation = "parent",
    bar_id: Annotated[UUID | None, Form()] = None,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    def run(who: Principal) -> str:
        proof = act_proof_for(node, request, who.actor, assertion, bar_id, "bar", "bar_id")
        node.app.propose_guardian_bar(who.actor, subject, guardian, relation, proof=proof, bar_id=bar_id)
        return "bar_proposed"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, run, BACK)


@router.post("/guardian-bars/{bar_id}/{act}/options")
def act_options(
    request: Request, node: LockedNode, bar_id: UUID, act: str, csrf: Csrf, session: Session = None
) -> Response:
    try:
        action, signed = _act(act)
    except InputError as exc:
        return _refused(request, node, None, exc)
    return signed_options(
        request, node, session, csrf, action, lambda who: node.app.bar_statement(who.actor, bar_id, signed)
    )


@router.post("/guardian-bars/{bar_id}/{act}")
def bar_act(
    request: Request,
    node: LockedNode,
    bar_id: UUID,
    act: str,
    csrf: Csrf,
    note: Annotated[str, Form(max_length=bounds.NOTE.max)] = "",
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    try:
        action, _ = _act(act)
    except InputError as exc:
        return _refused(request, node, None, exc)

    def run(who: Principal) -> str:
        proof = act_proof(node, request, who.actor, assertion)
        if act == "approve":
            node.app.approve_guardian_bar(who.actor, bar_id, proof=proof)
            return "bar_approved"
        if act == "lift":
            node.app.propose_bar_lift(who.actor, bar_id, note, proof=proof)
            return "lift_proposed"
        node.app.lift_guardian_bar(who.actor, bar_id, proof=proof)
        return "bar_lifted"

    return console_act(request, node, session, csrf, action, run, BACK)
