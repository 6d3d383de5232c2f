"""Companions, perpetrators' NON_DISCLOSURE requests and guardian bars over HTTP (issue 21, docs/year.md). Each
goes through :class:`ledger.app.FlagLedger` after the token's own roles are checked, as the year's commands do
(ledger/api/year.py)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger.api.deps import Caller, CurrentNode
from ledger.api.four_eyes import APPROVE, PROPOSE, require_either_side
from ledger.api.schemas import ERROR_RESPONSES, Body, FlagName, Note, Subject
from ledger.domain.types import Action

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["year"], responses=ERROR_RESPONSES)


class CompanionIn(Body):
    companion: Subject
    relation: Literal["child", "other"] = "child"
    flags: list[FlagName] = Field(
        default_factory=list, max_length=2, description="empty: every flag the case's victim holds here"
    )
    explanation: Note = ""


class RequestOut(BaseModel):
    request_id: UUID = Field(description="the companion's flag request: approve and execute it to attach them")


class PerpetratorRequestsIn(Body):
    explanation: Note = ""


class RequestsOut(BaseModel):
    request_ids: list[UUID]


class BarIn(Body):
    subject: Subject = Field(description="the protected person (a child, the victim)")
    guardian: Subject = Field(description="the guardian or proxy who may not act for them")
    relation: Literal["parent", "legal_guardian", "proxy"] = "parent"


class BarsOut(BaseModel):
    bars: list[dict[str, Any]]


class LiftIn(Body):
    note: Note = Field(description="why the guardian may act for the person again")


class BarOut(BaseModel):
    bar_id: UUID
    status: str


@router.post(
    "/cases/{case_id}/companions", response_model=RequestOut, status_code=201, summary="propose a companion (同伴者)"
)
def propose_companion(case_id: UUID, body: CompanionIn, node: CurrentNode, who: Caller) -> RequestOut:
    who.require(node, Action.REQUEST_FLAG)
    rid = node.app.propose_companion(
        who.actor, case_id, body.companion, relation=body.relation, flags=list(body.flags), explanation=body.explanation
    )
    return RequestOut(request_id=rid)


@router.post(
    "/cases/{case_id}/perpetrator-requests",
    response_model=RequestsOut,
    status_code=201,
    summary="open the NON_DISCLOSURE requests the year queue prompts for on the case's perpetrators",
)
def perpetrator_requests(case_id: UUID, body: PerpetratorRequestsIn, node: CurrentNode, who: Caller) -> RequestsOut:
    who.require(node, Action.REQUEST_FLAG)
    return RequestsOut(request_ids=node.app.request_perpetrator_flags(who.actor, case_id, body.explanation))


@router.post("/guardian-bars", response_model=BarOut, status_code=201, summary="propose barring a guardian")
def propose_bar(body: BarIn, node: CurrentNode, who: Caller) -> BarOut:
    who.require(node, PROPOSE)
    bid = node.app.propose_guardian_bar(who.actor, body.subject, body.guardian, body.relation)
    return BarOut(bar_id=bid, status="proposed")


@router.post("/guardian-bars/{bar_id}/approve", response_model=BarOut, summary="approve a bar (another person)")
def approve_bar(bar_id: UUID, node: CurrentNode, who: Caller) -> BarOut:
    who.require(node, APPROVE)
    node.app.approve_guardian_bar(who.actor, bar_id)
    return BarOut(bar_id=bar_id, status="in_force")


@router.post("/guardian-bars/{bar_id}/lift", response_model=BarOut, summary="propose lifting a bar")
def propose_lift(bar_id: UUID, body: LiftIn, node: CurrentNode, who: Caller) -> BarOut:
    who.require(node, PROPOSE)
    node.app.propose_bar_lift(who.actor, bar_id, body.note)
    return BarOut(bar_id=bar_id, status="lift_proposed")


@router.post("/guardian-bars/{bar_id}/lift/approve", response_model=BarOut, summary="approve lifting a bar")
def approve_lift(bar_id: UUID, node: CurrentNode, who: Caller) -> BarOut:
    who.require(node, APPROVE)
    node.app.lift_guardian_bar(who.actor, bar_id)
    return BarOut(bar_id=bar_id, status="lifted")


@router.get("/guardian-bars", response_model=BarsOut, summary="this agency's guardian bars, proposed or in force")
def list_bars(node: CurrentNode, who: Caller) -> BarsOut:
    require_either_side(node, who)
    return BarsOut(bars=node.app.guardian_bars(who.actor))
