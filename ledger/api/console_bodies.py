"""The console's page of protection-body requests (docs/bodies.md): a body's staff see their own requests and
what the municipality did; a municipality's staff see the requests sent to it. Agencies by name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ledger.api.console import Session, _page, _refused, _session
from ledger.api.deps import LockedNode
from ledger.domain.types import Action, AgencyKind
from ledger.errors import FlagLedgerError, NotFoundError

__all__ = ["router"]

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
    try:
        who = _session(node, session)
        mine = AgencyKind(node.app.agency(who.actor.agency).kind).is_protection_body
        if mine:
            who.require(node, Action.SEND_BODY_REQUEST)
            rows = node.app.body_requests(who.actor)
        else:
            who.require(node, Action.REQUEST_FLAG)
            rows = node.app.body_inbox(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    names: dict[str, str] = {}
    for row in rows:
        for code in (row["body"], row["municipality"]):
            names.setdefault(code, _name(node, code))
    context: dict[str, Any] = {"rows": rows, "mine": mine, "names": names}
    return _page(
        request,
        node,
        who,
        "body_requests.html",
        outcome_labels=OUTCOME_LABELS,
        reason_labels=REASON_LABELS,
        **context,
    )


def _name(node: Any, code: str) -> str:
    try:
        return str(node.app.agency(code).name)
    except NotFoundError:  # an agency whose registration has not reached this node: its code, then
        return code
