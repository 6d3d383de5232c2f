"""Acknowledging a security incident raised for the caller's agency (ledger/app/incidents.py); the open ones are
listed by ``GET /api/v1/queue`` (field ``incidents``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ledger.api.deps import Caller, LockedNode
from ledger.api.schemas import ERROR_RESPONSES, Body, Note
from ledger.app.incidents import ACKNOWLEDGE_ACTIONS, acknowledge
from ledger.errors import PermissionDenied

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["commands"], responses=ERROR_RESPONSES)


class IncidentAckIn(Body):
    note: Note = Field(description="what was done (e.g. the person was contacted, the sender called)")


class IncidentAckOut(BaseModel):
    incident_id: UUID
    acknowledged_by: str
    acknowledged_at: str


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=IncidentAckOut,
    summary="acknowledge a security incident raised for your agency",
)
def acknowledge_incident(incident_id: UUID, body: IncidentAckIn, node: LockedNode, who: Caller) -> IncidentAckOut:
    refused: PermissionDenied | None = None
    for action in ACKNOWLEDGE_ACTIONS:  # the token's roles must cover one of the actions that acknowledge
        try:
            who.require(node, action)
            break
        except PermissionDenied as exc:
            refused = exc
    else:
        assert refused is not None
        raise refused
    incident = acknowledge(node.app, who.actor, incident_id, body.note)
    return IncidentAckOut(
        incident_id=incident.id, acknowledged_by=str(who.actor), acknowledged_at=str(incident.acknowledged_at)
    )
