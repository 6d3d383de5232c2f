"""Queries over the projections (projections/views.py does the role filtering).

Anything naming a person is a POST with the subject in the body: an individual number must never end up in
a URL, an access log or a browser history. Reads of protected details are recorded as ledger events before
anything is returned (the views do it for the nationwide holders and the timeline; the liaison lookup here).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from consumers import linkage_queue
from ledger import clock
from ledger.api.deps import Caller, CurrentNode
from ledger.api.schemas import (
    ERROR_RESPONSES,
    Day,
    LiaisonOut,
    LiaisonQuery,
    NationwideQuery,
    OptionalSubjectQuery,
    OverdueOut,
    PortalQuery,
    PurposeQuery,
    RequestPathOut,
    SubjectQuery,
    WhoAmI,
)
from ledger.domain.types import Action, Flag
from projections import views

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["queries"], responses=ERROR_RESPONSES)


@router.get("/whoami", response_model=WhoAmI, summary="the caller, as the token says")
def whoami(node: CurrentNode, who: Caller) -> WhoAmI:
    return WhoAmI(
        agency=who.actor.agency,
        staff=who.actor.staff,
        roles=list(who.roles),
        expires_at=who.expires_at.isoformat(),
        kind="system" if who.is_system else "staff",
    )


@router.post(
    "/queries/agency-flags",
    response_model=list[views.AgencyFlag],
    summary="flags your agency holds or held (optionally for one person), with history",
)
def agency_flags(body: OptionalSubjectQuery, node: CurrentNode, who: Caller) -> list[views.AgencyFlag]:
    return views.agency_flag_state(node, who.actor, body.subject)


@router.post(
    "/queries/nationwide",
    response_model=views.NationwideView,
    summary="is this person protected anywhere (never which other agency protects them)",
)
def nationwide(body: NationwideQuery, node: CurrentNode, who: Caller) -> views.NationwideView:
    # a purpose no longer opens the other holders: 403 holders_withheld for everyone (issue 18)
    return views.nationwide_view(node, who.actor, body.subject, purpose=body.purpose)


@router.post(
    "/queries/counter",
    response_model=views.CounterView,
    summary="the counter view: protection banner and your agency's answers about the person",
)
def counter(body: SubjectQuery, node: CurrentNode, who: Caller) -> views.CounterView:
    who.require(node, Action.COUNTER_LOOKUP)
    return views.counter_view(node, who.actor, body.subject)


@router.post(
    "/queries/request-path",
    response_model=RequestPathOut,
    summary="would a provision request about this person be answered automatically or by hand",
)
def request_path(body: SubjectQuery, node: CurrentNode, who: Caller) -> RequestPathOut:
    # the same knowledge as the counter view's banner (every department sees the protection, Point 3)
    who.require(node, Action.COUNTER_LOOKUP)
    flags = node.app._national_flags(node.app.subject(body.subject))
    return RequestPathOut(path="manual" if flags.get(Flag.NO_AUTO_RESPONSE.value) else "automatic")


@router.post(
    "/queries/portal-records",
    response_model=views.PortalView,
    summary="Mynaportal provision-record display of a subject for a viewer (the portal's system account only)",
)
def portal_records(body: PortalQuery, node: CurrentNode, who: Caller) -> views.PortalView:
    who.require(node, Action.READ_PORTAL)  # a staff token: 403 system_only, whatever its roles
    return views.portal_records_for(node, who.actor, body.viewer, body.subject)


@router.post(
    "/queries/self-information",
    response_model=views.SelfInfoView,
    summary="Mynaportal self-information display of a subject for a viewer (the portal's system account only)",
)
def self_information(body: PortalQuery, node: CurrentNode, who: Caller) -> views.SelfInfoView:
    who.require(node, Action.READ_PORTAL)
    return views.self_information_for(node, who.actor, body.viewer, body.subject)


@router.get(
    "/queue",
    response_model=views.WorkQueue,
    summary="approvals, held requests (deciders only), reviews due, protection-body requests; in linkage hub "
    "mode the hub's consultations and cases (deciders) and escalations (administrators), naming no holder",
)
def queue(node: CurrentNode, who: Caller, today: Annotated[Day | None, Query()] = None) -> views.WorkQueue:
    return linkage_queue.work_queue(node, who.actor, today)


@router.get(
    "/queue/overdue",
    response_model=list[OverdueOut],
    summary="held requests past their due date, and whom they were escalated to (deciders, administrators)",
)
def overdue(node: CurrentNode, who: Caller) -> list[OverdueOut]:
    return [OverdueOut.model_validate(r) for r in node.app.overdue(who.actor, clock.now())]


@router.post(
    "/queries/timeline",
    response_model=list[views.TimelineEntry],
    summary="every event about the person (auditors; the read is recorded first)",
)
def timeline(body: PurposeQuery, node: CurrentNode, who: Caller) -> list[views.TimelineEntry]:
    who.require(node, Action.AUDIT)
    return views.subject_timeline(node, who.actor, body.subject, body.purpose)


@router.post(
    "/queries/liaison",
    response_model=LiaisonOut,
    summary="your agency's contact point resolves a liaison reference (recorded)",
)
def liaison(body: LiaisonQuery, node: CurrentNode, who: Caller) -> LiaisonOut:
    who.require(node, Action.VIEW_PROTECTED)
    target = views.resolve_liaison(node, who.actor, body.reference, purpose=body.purpose)  # recorded first
    return LiaisonOut(subject=target.subject, flags=list(target.flags))
