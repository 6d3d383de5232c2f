"""The console's 宛名番号 page: a requester records the agency's own reference number for a person (at intake,
or later for a person taken in before), so every console page names them by it (ledger/api/console_names.py).
The individual number typed here is turned into the pseudonym at once and never kept or shown."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from ledger.api.auth import Principal
from ledger.api.console import Session, _page, _refused, _session, console_act
from ledger.api.deps import LockedNode
from ledger.app import Actor
from ledger.domain import bounds
from ledger.domain.types import Action
from ledger.errors import FlagLedgerError
from ledger.runtime.bootstrap import Node
from ledger.runtime.reference_numbers import REFERENCE_MAX, ReferenceBook

__all__ = ["record_reference", "router"]

router = APIRouter(prefix="/console", include_in_schema=False)


def record_reference(node: Node, actor: Actor, subject: str, reference: str) -> None:
    """Keep the actor's agency's 宛名番号 for the person ``subject`` (an individual number or pseudonym)."""
    pseudonym = node.app.subject(subject)
    ReferenceBook(node.engine).record(actor.agency, pseudonym, reference, actor.staff, node.app.clock())


@router.get("/references", response_class=HTMLResponse)
def references_form(request: Request, node: LockedNode, session: Session = None) -> Response:
    try:
        who = _session(node, session)
        who.require(node, Action.REQUEST_FLAG)
    except FlagLedgerError as exc:
        return _refused(request, node, None, exc)
    return _page(request, node, who, "references.html", reference_max=REFERENCE_MAX)


@router.post("/references", response_class=HTMLResponse)
def record(
    request: Request,
    node: LockedNode,
    subject: Annotated[str, Form(max_length=bounds.SUBJECT.max)],
    reference: Annotated[str, Form(max_length=REFERENCE_MAX * 3)],
    csrf: Annotated[str, Form(max_length=128)],
    session: Session = None,
) -> Response:
    def number(who: Principal) -> str:
        record_reference(node, who.actor, subject, reference)
        return "numbered"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, number, "/console/references")
