"""A protected person's year over HTTP (docs/year.md): residence changes (handover requests), named risks,
the support-measure term, emergency flags and the year's queue. Each goes through :class:`ledger.app.FlagLedger`
after the token's own roles are checked, as the other workflow commands do (ledger/api/commands.py)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger.api.deps import Caller, CurrentNode
from ledger.api.schemas import ERROR_RESPONSES, AgencyCode, Body, Day, FlagName, Note, ReasonName, Subject
from ledger.domain.types import Action
from ledger.errors import PermissionDenied

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["year"], responses=ERROR_RESPONSES)


class MoveIn(Body):
    subject: Subject
    to_agency: AgencyCode
    from_agency: AgencyCode | None = Field(None, description="the municipality moved from, if known here")
    moved_on: Day
    source: Literal["counter", "registry"] = "counter"


class MoveOut(BaseModel):
    move_id: UUID | None
    recorded: bool = Field(description="false: the person is protected nowhere, so no handover is needed")


class RiskIn(Body):
    subject: Subject
    flags: list[FlagName] = Field(min_length=1, max_length=2)
    risk: Note = Field(description="who may learn what if protection stops here")


class DecisionOut(BaseModel):
    decision_id: UUID
    status: str


class ProvisionalIn(Body):
    subject: Subject
    flags: list[FlagName] = Field(min_length=1, max_length=2)
    reason: ReasonName = "dv"
    explanation: Note = Field(description="why it cannot wait for the approval chain")


class NoteIn(Body):
    note: Note = ""


class ProvisionalOut(BaseModel):
    request_id: UUID
    status: str


class ApplicationIn(Body):
    subject: Subject
    applied_on: Day


class ExtensionIn(Body):
    subject: Subject
    requested_on: Day


class LapseIn(Body):
    subject: Subject
    note: Note = ""


class TermOut(BaseModel):
    ends_on: str | None = None
    status: str


class YearQueueOut(BaseModel):
    agency: str
    handovers: list[dict[str, Any]]
    last_holder_warnings: list[dict[str, Any]]
    terms: list[dict[str, Any]]
    provisional: list[dict[str, Any]]
    perpetrators: list[dict[str, Any]] = Field(default_factory=list, description="NON_DISCLOSURE to request")
    companions: list[dict[str, Any]] = Field(default_factory=list, description="flags a companion lacks")
    moves_refused: list[dict[str, Any]] = Field(
        default_factory=list, description="hub mode: moves reported here the hub refused (no handover under way)"
    )


@router.post("/moves", response_model=MoveOut, status_code=201, summary="a protected person's residence change")
def record_move(body: MoveIn, node: CurrentNode, who: Caller) -> MoveOut:
    who.require(node, Action.REQUEST_FLAG)
    mid = node.app.record_move(
        who.actor,
        body.subject,
        to_agency=body.to_agency,
        from_agency=body.from_agency or "",
        moved_on=body.moved_on,
        source=body.source,
    )
    return MoveOut(move_id=mid, recorded=mid is not None)


@router.get("/year-queue", response_model=YearQueueOut, summary="handovers, last-holder releases, terms, emergencies")
def year_queue(node: CurrentNode, who: Caller) -> YearQueueOut:
    refused: PermissionDenied | None = None
    for action in (Action.REQUEST_FLAG, Action.APPROVE_FLAG, Action.EXECUTE_FLAG, Action.ADMINISTER):
        try:
            who.require(node, action)  # a token (and a person) with a part in protection decisions
        except PermissionDenied as exc:
            refused = exc
            continue
        return YearQueueOut(**node.app.year_queue(who.actor))
    assert refused is not None
    raise refused


@router.post("/release-risks", response_model=DecisionOut, status_code=201, summary="name the risk of a release")
def propose_risk(body: RiskIn, node: CurrentNode, who: Caller) -> DecisionOut:
    who.require(node, Action.REQUEST_FLAG)
    did = node.app.propose_release_risk(who.actor, body.subject, list(body.flags), body.risk)
    return DecisionOut(decision_id=did, status="proposed")


@router.post("/release-risks/{decision_id}/approve", response_model=DecisionOut, summary="approve a named risk")
def approve_risk(decision_id: UUID, node: CurrentNode, who: Caller) -> DecisionOut:
    who.require(node, Action.APPROVE_FLAG)
    node.app.approve_release_risk(who.actor, decision_id)
    return DecisionOut(decision_id=decision_id, status="approved")


@router.post(
    "/provisional-flags", response_model=ProvisionalOut, status_code=201, summary="set an emergency flag alone"
)
def set_provisional(body: ProvisionalIn, node: CurrentNode, who: Caller) -> ProvisionalOut:
    who.require(node, Action.SET_PROVISIONAL)
    rid = node.app.set_provisional(
        who.actor, body.subject, list(body.flags), reason=body.reason, explanation=body.explanation
    )
    return ProvisionalOut(request_id=rid, status="provisional")


@router.post(
    "/provisional-flags/{request_id}/co-approve", response_model=ProvisionalOut, summary="co-approve an emergency flag"
)
def co_approve(request_id: UUID, body: NoteIn, node: CurrentNode, who: Caller) -> ProvisionalOut:
    who.require(node, Action.APPROVE_FLAG)
    node.app.co_approve_provisional(who.actor, request_id, body.note)
    return ProvisionalOut(request_id=request_id, status="co_approved")


@router.post("/terms", response_model=TermOut, status_code=201, summary="the support-measure application (申出)")
def apply(body: ApplicationIn, node: CurrentNode, who: Caller) -> TermOut:
    who.require(node, Action.REQUEST_FLAG)
    node.app.record_application(who.actor, body.subject, body.applied_on)
    term = node.app.term(who.actor.agency, body.subject)
    return TermOut(ends_on=term.ends_on if term else None, status="applied")


@router.post("/terms/extension", response_model=TermOut, summary="the person's extension request (延長申出)")
def extend(body: ExtensionIn, node: CurrentNode, who: Caller) -> TermOut:
    who.require(node, Action.REQUEST_FLAG)
    return TermOut(ends_on=node.app.request_extension(who.actor, body.subject, body.requested_on), status="extended")


@router.post("/terms/lapse", response_model=TermOut, summary="propose a term's lapse (no flag is lifted)")
def propose_lapse(body: LapseIn, node: CurrentNode, who: Caller) -> TermOut:
    who.require(node, Action.REQUEST_FLAG)
    node.app.propose_lapse(who.actor, body.subject, body.note)
    return TermOut(status="lapse_proposed")


@router.post("/terms/lapse/approve", response_model=TermOut, summary="approve a term's lapse (no flag is lifted)")
def approve_lapse(body: LapseIn, node: CurrentNode, who: Caller) -> TermOut:
    who.require(node, Action.APPROVE_FLAG)
    node.app.approve_lapse(who.actor, body.subject, body.note)
    return TermOut(status="lapsed")
