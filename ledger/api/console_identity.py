"""The console's identity pages (issue #21): number changes (個人番号の変更: a requester asks to link the old
number to the new one, another staff member approves or rejects — four eyes, ledger/app/identity.py) and proxies
(代理人: register or cancel). Numbers are typed into forms and turned into pseudonyms at once; the pages name
persons by the agency's 宛名番号 (ledger/api/console_names.py), never by a number."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from ledger.api.auth import Principal
from ledger.api.console import Session, _page, _refused, _session, console_act
from ledger.api.deps import LockedNode
from ledger.domain import bounds
from ledger.domain.types import Action
from ledger.errors import FlagLedgerError, InputError

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

LINK_KINDS = {"link": "番号変更の紐付け", "unlink": "誤った紐付けの取消", "second_change": "再変更のための取消"}
Number = Annotated[str, Form(max_length=bounds.SUBJECT.max)]
Csrf = Annotated[str, Form(max_length=128)]
Note = Annotated[str, Form(max_length=bounds.NOTE.max)]


# -- number changes ---------------------------------------------------------------------------------------------
@router.get("/number-changes", response_class=HTMLResponse)
def number_changes(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        pending = node.app.pending_link_requests(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(request, node, who, "number_changes.html", pending=pending, link_kinds=LINK_KINDS)


@router.post("/number-changes")
def request_link(
    request: Request, node: LockedNode, old: Number, new: Number, reason: Note, csrf: Csrf, session: Session = None
) -> Response:
    def ask(who: Principal) -> str:
        node.app.request_link(who.actor, old, new, reason)
        return "requested"

    return console_act(request, node, session, csrf, Action.REQUEST_LINK, ask, "/console/number-changes")


@router.post("/number-changes/{request_id}/{decision}")
def decide_link(
    request: Request,
    node: LockedNode,
    request_id: UUID,
    decision: str,
    csrf: Csrf,
    reason: Note = "",
    session: Session = None,
) -> Response:
    def decide(who: Principal) -> str:
        if decision == "approve":
            node.app.approve_link(who.actor, request_id, reason)
            return "approved"
        if decision == "reject":
            node.app.reject_link(who.actor, request_id, reason)
            return "rejected"
        raise InputError("unknown decision: approve or reject", field="decision")

    return console_act(request, node, session, csrf, Action.APPROVE_LINK, decide, "/console/number-changes")


# -- proxies --------------------------------------------------------------------------------------------------------
@router.get("/proxies", response_class=HTMLResponse)
def proxies(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        who.require(node, Action.OPEN_CASE)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(request, node, who, "proxies.html")


@router.post("/proxies/{act}")
def proxy_act(
    request: Request,
    node: LockedNode,
    act: str,
    subject: Number,
    proxy: Number,
    csrf: Csrf,
    reason: Note = "",
    session: Session = None,
) -> Response:
    def change(who: Principal) -> str:
        if act == "register":
            node.app.register_proxy(who.actor, subject, proxy)
            return "proxy_registered"
        if act == "cancel":
            how = node.app.cancel_proxy(who.actor, subject, proxy, reason)
            return "proxy_cancelled" if how == "cancelled" else "proxy_cancellation_sent"
        raise InputError("unknown act: register or cancel", field="act")

    return console_act(request, node, session, csrf, Action.OPEN_CASE, change, "/console/proxies")
