"""The console's year page (issue #21): what waits for the agency this year — handovers from a person's move to
take over, releases that would leave a person with no holder, support-measure terms due or escalated, emergency
flags awaiting co-approval (ledger/app/year.py ``year_queue``), and held requests past their due date
(ledger/app/answers.py ``overdue``, deciders and administrators only). Read-only: each item is acted on through
its own page (a takeover is a flag request; a lapse or an extension through ``flagledger year``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ledger import clock
from ledger.api.console import Session, _page, _refused, _session
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import signs_with_key
from ledger.errors import FlagLedgerError, PermissionDenied

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

LEVEL_LABELS = {"approver": "承認者", "administrator": "管理者"}


@router.get("/year", response_class=HTMLResponse)
def year(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        queue = node.app.year_queue(who.actor)
        risks = node.app.release_risks(who.actor)
        try:
            overdue = node.app.overdue(who.actor, clock.now())
        except PermissionDenied:  # a requester or operator: the held queue's deadlines are the deciders'
            overdue = None
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(
        request,
        node,
        who,
        "year.html",
        queue=queue,
        overdue=overdue,
        risks=risks,
        level_labels=LEVEL_LABELS,
        sign_with_key=signs_with_key(node, who.actor),
    )
