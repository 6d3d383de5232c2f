"""Workflow commands: intake, flag requests (set/release/renew), approvals, execution, protection-body
requests, provision requests and held-request decisions. Each goes through :class:`ledger.app.FlagLedger`
(the recorded permission table decides) after the token's own roles are checked."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from consumers.linkage_staff import ask
from consumers.linkage_staff import querier_answer as hub_querier_answer
from ledger.api.deps import Caller, CurrentNode
from ledger.api.schemas import (
    ERROR_RESPONSES,
    ApproveDecisionIn,
    ApproveIn,
    BodyRequestIn,
    BodyRequestOut,
    CaseIn,
    CaseOut,
    ExecutedOut,
    FlagRequestIn,
    FlagRequestOut,
    ProposeIn,
    ProvisionIn,
    QuerierAnswerOut,
    RejectIn,
    RequestStatusOut,
    UnlockedOut,
    UnlockIn,
)
from ledger.domain.types import Action
from ledger.errors import NotFoundError
from ledger.runtime.linkage import hub_mode

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["commands"], responses=ERROR_RESPONSES)


@router.post("/cases", response_model=CaseOut, status_code=201, summary="open a protection case (相談受付)")
def open_case(body: CaseIn, node: CurrentNode, who: Caller) -> CaseOut:
    who.require(node, Action.OPEN_CASE)
    case_id = node.app.open_case(
        who.actor,
        body.victim,
        perpetrators=body.perpetrators,
        reason=body.reason,
        checklist={c: True for c in body.checklist},
        proxies_to_cancel=body.proxies_to_cancel,
        notes=body.notes,
    )
    return CaseOut(case_id=case_id)


@router.post(
    "/flag-requests", response_model=RequestStatusOut, status_code=201, summary="request to set, release or renew flags"
)
def request_flags(body: FlagRequestIn, node: CurrentNode, who: Caller) -> RequestStatusOut:
    who.require(node, Action.REQUEST_FLAG)
    rid = node.app.request_flags(
        who.actor,
        body.subject,
        list(body.flags),
        kind=body.kind,
        reason=body.reason,
        review_date=body.review_date,
        case_id=body.case_id,
        explanation=body.explanation,
        body_request_id=body.body_request_id,
    )
    return RequestStatusOut(request_id=rid, status="pending")


@router.get("/flag-requests/{request_id}", response_model=FlagRequestOut, summary="one of your agency's requests")
def flag_request(request_id: UUID, node: CurrentNode, who: Caller) -> FlagRequestOut:
    r = node.app.flag_request(request_id)
    if r.agency != who.actor.agency:  # another agency's request: as if it did not exist
        raise NotFoundError("unknown flag request")
    return FlagRequestOut(
        request_id=r.id,
        agency=r.agency,
        kind=r.kind,
        subject=r.subject,
        flags=list(r.flags),
        reason=r.reason,
        review_date=r.review_date,
        requested_by=r.requested_by,
        approvals_required=r.approvals_required,
        status=r.status,
    )


@router.post("/flag-requests/{request_id}/approve", response_model=RequestStatusOut, summary="approve a request")
def approve(request_id: UUID, body: ApproveIn, node: CurrentNode, who: Caller) -> RequestStatusOut:
    who.require(node, Action.APPROVE_FLAG)
    return RequestStatusOut(request_id=request_id, status=node.app.approve_request(who.actor, request_id, body.note))


@router.post("/flag-requests/{request_id}/reject", response_model=RequestStatusOut, summary="reject a request")
def reject(request_id: UUID, body: RejectIn, node: CurrentNode, who: Caller) -> RequestStatusOut:
    who.require(node, Action.APPROVE_FLAG)
    node.app.reject_request(who.actor, request_id, body.reason)
    return RequestStatusOut(request_id=request_id, status="rejected")


@router.post(
    "/flag-requests/{request_id}/execute",
    response_model=ExecutedOut,
    summary="apply an approved request (designated operator)",
)
def execute(request_id: UUID, node: CurrentNode, who: Caller) -> ExecutedOut:
    who.require(node, Action.EXECUTE_FLAG)
    node.app.execute_request(who.actor, request_id)
    r = node.app.flag_request(request_id)
    return ExecutedOut(request_id=request_id, status=r.status, kind=r.kind, flags=list(r.flags))


@router.post(
    "/body-requests",
    response_model=BodyRequestOut,
    status_code=201,
    summary="a protection body asks a municipality to set flags",
)
def send_body_request(body: BodyRequestIn, node: CurrentNode, who: Caller) -> BodyRequestOut:
    who.require(node, Action.SEND_BODY_REQUEST)
    bid = node.app.send_body_request(who.actor, body.municipality, body.subject, list(body.flags), body.reason)
    return BodyRequestOut(body_request_id=bid)


@router.post(
    "/provision-requests",
    response_model=QuerierAnswerOut,
    status_code=201,
    summary="query a providing agency about a subject (情報照会)",
)
def request_provision(body: ProvisionIn, node: CurrentNode, who: Caller) -> QuerierAnswerOut:
    who.require(node, Action.REQUEST_PROVISION)
    if hub_mode(node.config) and body.provider not in node.app.hosted:  # issue 19: through the hub
        rid = ask(
            node.app,
            node.engine,
            who.actor,
            body.provider,
            body.subject,
            legal_item=body.legal_item,
            procedure=body.procedure,
            info_kind=body.info_kind,
        )
        hub_ans = hub_querier_answer(node.engine, who.actor.agency, rid)
        assert hub_ans is not None
        return QuerierAnswerOut(request_id=UUID(rid), status=hub_ans.status, message=hub_ans.message)  # type: ignore[arg-type]
    ans = node.app.request_provision(
        who.actor,
        body.provider,
        body.subject,
        legal_item=body.legal_item,
        procedure=body.procedure,
        info_kind=body.info_kind,
        applicant=body.applicant,
    )
    return QuerierAnswerOut(request_id=UUID(ans.request_id), status=ans.status, message=ans.message)  # type: ignore[arg-type]


@router.get(
    "/provision-requests/{request_id}",
    response_model=QuerierAnswerOut,
    summary="the answer as the querying agency sees it",
)
def provision_status(request_id: UUID, node: CurrentNode, who: Caller) -> QuerierAnswerOut:
    through_hub = hub_querier_answer(node.engine, who.actor.agency, request_id.hex) if hub_mode(node.config) else None
    if through_hub is not None:
        who.require(node, Action.REQUEST_PROVISION)
        return QuerierAnswerOut(request_id=request_id, status=through_hub.status, message=through_hub.message)  # type: ignore[arg-type]
    ans = node.app.provision_answer(who.actor, request_id)
    return QuerierAnswerOut(request_id=request_id, status=ans.status, message=ans.message)  # type: ignore[arg-type]


@router.post(
    "/provision-requests/{request_id}/propose",
    response_model=RequestStatusOut,
    summary="propose to provide or refuse a held request, after checking who asks (Point 5)",
)
def propose(request_id: UUID, body: ProposeIn, node: CurrentNode, who: Caller) -> RequestStatusOut:
    who.require(node, Action.REVIEW_HELD)
    node.app.propose_decision(who.actor, request_id, body.decision, body.applicant_check, body.note)
    return RequestStatusOut(request_id=request_id, status="held")


@router.post(
    "/provision-requests/{request_id}/approve",
    response_model=RequestStatusOut,
    summary="approve the proposed decision on a held request, naming the proposal seen",
)
def approve_decision(request_id: UUID, body: ApproveDecisionIn, node: CurrentNode, who: Caller) -> RequestStatusOut:
    who.require(node, Action.APPROVE_HELD)
    status = node.app.approve_decision(who.actor, request_id, body.proposal_version)
    return RequestStatusOut(request_id=request_id, status=status)


# -- the caller's staff key: acts are signed by the person (docs/staff-signing.md) ------------------------
@router.post(
    "/staff-key/unlock",
    response_model=UnlockedOut,
    summary="unlock your staff key in this server with your password, so that your acts carry your signature",
)
def unlock_staff_key(body: UnlockIn, node: CurrentNode, who: Caller) -> UnlockedOut:
    """Until the console signs with WebAuthn (the ``proof`` seam of the flag commands), a served node signs a
    person's acts with their key unlocked here; a wrong password is recorded and rate-limited (401)."""
    signer = node.app.unlock(who.actor.agency, who.actor.staff, body.password)
    return UnlockedOut(staff=str(who.actor), staff_key=signer.key_id)


@router.post("/staff-key/lock", status_code=204, summary="forget your unlocked staff key in this server")
def lock_staff_key(node: CurrentNode, who: Caller) -> None:
    node.app.lock(who.actor.agency, who.actor.staff)
