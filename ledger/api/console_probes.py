"""The console's probe-notice page (issue #21): someone asked about a person this agency protects — held or
answered, at any provider — so the protecting agency can judge whether a perpetrator is searching. For the
agency's deciders (reviewers, approvers), as in the work queue (projections/views_queues.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from consumers import linkage_queue
from ledger.api.console import Session, _decides, _page, _refused, _session
from ledger.api.deps import LockedNode
from ledger.errors import Code, FlagLedgerError, PermissionDenied

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/probes", response_class=HTMLResponse)
def probes(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        if not _decides(node, who):
            raise PermissionDenied("only reviewers and approvers see probe notices", code=Code.ROLE_NOT_PERMITTED)
        queue = linkage_queue.work_queue(node, who.actor)  # hub mode: the hub's consultations of this holder
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    return _page(request, node, who, "probes.html", probes=queue.probes, consultations=queue.consultations)
