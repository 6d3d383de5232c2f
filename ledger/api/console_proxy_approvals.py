"""The console's page of a holder's proxy approvals (代理人の閲覧承認, issue 19, docs/linkage.md): a requester
proposes that a proxy may read a person's portal page while this agency protects them, another person (an
approver) puts it in force; withdrawing it takes two people as well (ledger/app/proxy_approvals.py). Each act is
signed by its person — their security key's assertion (options from ``…/options``) or, with no certified key,
the staff key their sign-in unlocked. Persons by the agency's 宛名番号 only; forms name an approval by its id."""

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
from ledger.domain.staff_acts import APPROVED, REQUESTED
from ledger.domain.types import Action
from ledger.errors import FlagLedgerError, InputError

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

BACK = "/console/proxy-approvals"
Number = Annotated[str, Form(max_length=bounds.SUBJECT.max)]
Csrf = Annotated[str, Form(max_length=128)]
Assertion = Annotated[str, Form(max_length=ASSERTION_MAX)]
Note = Annotated[str, Form(max_length=bounds.NOTE.max)]
# act → (the role it needs, what its person signs, on the withdrawal or on the approval)
_ACTS = {
    "approve": (Action.APPROVE_FLAG, APPROVED, False),
    "withdraw": (Action.REQUEST_FLAG, REQUESTED, True),
    "withdraw-approve": (Action.APPROVE_FLAG, APPROVED, True),
}


def _act(act: str) -> tuple[Action, str, bool]:
    if act not in _ACTS:
        raise InputError("unknown act: approve, withdraw or withdraw-approve", field="act")
    return _ACTS[act]


@router.get("/proxy-approvals", response_class=HTMLResponse)
def approvals(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        listed = node.app.proxy_approvals(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(
        request, node, who, "proxy_approvals.html", approvals=listed, sign_with_key=signs_with_key(node, who.actor)
    )


@router.post("/proxy-approvals/options")
def propose_options(
    request: Request, node: LockedNode, subject: Number, proxy: Number, csrf: Csrf, session: Session = None
) -> Response:
    aid = uuid4()

    def statement(who: Principal) -> bytes:
        return node.app.proxy_approval_statement(who.actor, aid, REQUESTED, subject=subject, proxy=proxy)

    return signed_options(request, node, session, csrf, Action.REQUEST_FLAG, statement, {"approval_id": str(aid)})


@router.post("/proxy-approvals")
def propose(
    request: Request,
    node: LockedNode,
    subject: Number,
    proxy: Number,
    csrf: Csrf,
    note: Note = "",
    approval_id: Annotated[UUID | None, Form()] = None,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    def run(who: Principal) -> str:
        proof = act_proof_for(node, request, who.actor, assertion, approval_id, "proxy approval", "approval_id")
        node.app.propose_proxy_approval(who.actor, subject, proxy, note, proof=proof, approval_id=approval_id)
        return "proxy_approval_proposed"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, run, BACK)


@router.post("/proxy-approvals/{approval_id}/{act}/options")
def act_options(
    request: Request, node: LockedNode, approval_id: UUID, act: str, csrf: Csrf, session: Session = None
) -> Response:
    try:
        action, signed, withdrawal = _act(act)
    except InputError as exc:
        return _refused(request, node, None, exc)
    return signed_options(
        request,
        node,
        session,
        csrf,
        action,
        lambda who: node.app.proxy_approval_statement(who.actor, approval_id, signed, withdrawal=withdrawal),
    )


@router.post("/proxy-approvals/{approval_id}/{act}")
def approval_act(
    request: Request,
    node: LockedNode,
    approval_id: UUID,
    act: str,
    csrf: Csrf,
    note: Note = "",
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    try:
        action, _, _ = _act(act)
    except InputError as exc:
        return _refused(request, node, None, exc)

    def run(who: Principal) -> str:
        proof = act_proof(node, request, who.actor, assertion)
        if act == "approve":
            node.app.approve_proxy_approval(who.actor, approval_id, proof=proof)
            return "proxy_approval_approved"
        if act == "withdraw":
            node.app.propose_proxy_withdrawal(who.actor, approval_id, note, proof=proof)
            return "proxy_withdrawal_proposed"
        node.app.withdraw_proxy_approval(who.actor, approval_id, proof=proof)
        return "proxy_approval_withdrawn"

    return console_act(request, node, session, csrf, action, run, BACK)
