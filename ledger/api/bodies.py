"""Protection bodies over HTTP (docs/bodies.md): a body's own requests and their outcome, the municipality's
inbox of requests sent to it, and the law catalogue queries are checked against."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger.api.deps import Caller, CurrentNode
from ledger.api.schemas import ERROR_RESPONSES
from ledger.domain.types import Action

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["bodies"], responses=ERROR_RESPONSES)


class OutcomeStep(BaseModel):
    status: str = Field(description="requested, approved, rejected or executed")
    on: str = Field(description="when the municipality acted (ISO 8601, UTC)")
    flag_request_id: UUID
    kind: str = Field(description="set, renew or release")
    flags: list[str]


class BodyRequestStatus(BaseModel):
    body_request_id: UUID
    body: str
    municipality: str
    flags: list[str]
    reason: str
    sent_by: str
    sent_at: str
    status: str = Field(description="sent (nothing done yet), or the latest step of the municipality's answer")
    outcomes: list[OutcomeStep]


class LawRow(BaseModel):
    item: int
    procedure: str
    procedure_text: str
    querier: str
    querier_kinds: list[str]  # the agency kinds that may ask under the row (docs/bodies.md)
    provider: str
    provider_kinds: list[str]  # the agency kinds that may be asked under the row (docs/bodies.md)
    info_kinds: list[str]
    source: str
    ordinance_item: int | None
    confirmed_by: str | None
    url: str | None  # where the row was checked against a source text
    retrieved: str | None  # when (ISO date)


class LawCatalogueOut(BaseModel):
    as_of: str
    sources: dict[str, str]
    note: str
    rows: list[LawRow]


@router.get("/body-requests", response_model=list[BodyRequestStatus], summary="your body's requests and outcomes")
def body_requests(node: CurrentNode, who: Caller) -> list[dict[str, Any]]:
    who.require(node, Action.SEND_BODY_REQUEST)
    return node.app.body_requests(who.actor)


@router.get("/body-requests/{body_request_id}", response_model=BodyRequestStatus, summary="one of your body's requests")
def body_request(body_request_id: UUID, node: CurrentNode, who: Caller) -> dict[str, Any]:
    who.require(node, Action.SEND_BODY_REQUEST)
    return node.app.body_request_outcome(who.actor, body_request_id)


@router.get("/body-inbox", response_model=list[BodyRequestStatus], summary="requests sent to your municipality")
def body_inbox(node: CurrentNode, who: Caller) -> list[dict[str, Any]]:
    who.require(node, Action.REQUEST_FLAG)
    return node.app.body_inbox(who.actor)


@router.get("/law-catalogue", response_model=LawCatalogueOut, summary="the legal bases queries are checked against")
def law_catalogue(node: CurrentNode, who: Caller) -> dict[str, Any]:
    node.app.permit(who.actor)  # any active staff member: the law is public, the caller is still known
    return node.app.law_catalogue()
