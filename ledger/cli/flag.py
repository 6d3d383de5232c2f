"""``flagledger flag …``: requests to set, release or renew flags, their approval, execution and lookup."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out, unlocked
from ledger.cli.parsing import DAY, UUID_ID, argument, choices, option
from ledger.domain.types import Action, Flag, Reason, RequestKind

flag = group("flag", "flag requests, approvals, setting and release")


@command(flag, "request", help="request to set, release or renew flags")
@as_actor()
@option("--subject", required=True, help="individual number or pseudonym")
@option("--flag", multiple=True, required=True, type=choices(Flag))
@option("--kind", default="set", type=choices(RequestKind))
@option("--reason", default="dv", type=choices(Reason))
@option("--review-date", type=DAY, default=None)
@option("--case", type=UUID_ID, default=None)
@option("--explanation", default="", help="explanation given to the person (release)")
@option("--body-request", type=UUID_ID, default=None)
def request(
    actor: Actor,
    subject: str,
    flag: tuple[str, ...],
    kind: str,
    reason: str,
    review_date: date | None,
    case: UUID | None,
    explanation: str,
    body_request: UUID | None,
) -> int:
    rid = node().app.request_flags(
        unlocked(actor),
        subject,
        list(flag),
        kind=kind,
        reason=reason,
        review_date=review_date,
        case_id=case,
        explanation=explanation,
        body_request_id=body_request,
    )
    out({"request_id": str(rid), "status": "pending"})
    return 0


@command(flag, "approve", help="approve a pending request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--note", default="")
def approve(actor: Actor, request_id: UUID, note: str) -> int:
    status = node().app.approve_request(unlocked(actor), request_id, note)
    out({"request_id": str(request_id), "status": status})
    return 0


@command(flag, "reject", help="reject a pending request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--reason", required=True)
def reject(actor: Actor, request_id: UUID, reason: str) -> int:
    node().app.reject_request(unlocked(actor), request_id, reason)
    out({"request_id": str(request_id), "status": "rejected"})
    return 0


@command(flag, "execute", help="apply an approved request (designated operator)")
@as_actor()
@argument("request_id", type=UUID_ID)
def execute(actor: Actor, request_id: UUID) -> int:
    app = node().app
    app.execute_request(unlocked(actor), request_id)
    r = app.flag_request(request_id)
    out({"request_id": str(request_id), "status": r.status, "kind": r.kind, "flags": r.flags})
    return 0


@command(flag, "show", help="is this person protected (counter lookup)")
@as_actor()
@option("--subject", required=True)
def show(actor: Actor, subject: str) -> int:
    app = node().app
    app.authorise(actor, Action.COUNTER_LOOKUP)
    state = app.flag_state.flags_for(app.subject(subject)) if app.flag_state else {}
    out({"subject": app.subject(subject), "protected": bool(state), "flags": sorted(state)})
    return 0
