"""Flag requests with their approval chain, and the flags an agency holds on a subject."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REJECTED,
    REQUESTED,
    details_digest,
    note_digest,
    request_digest,
)
from ledger.domain.types import RequestStatus
from ledger.errors import NotFoundError, SelfApprovalError, StateConflict


class FlagRequest(LedgerAggregate):
    """Request → approvals (four eyes, chain length per agency policy) → executed by an operator.

    Each act carries the acting person's own signature (``staff_signature``: key id and Ed25519 signature over
    :func:`ledger.domain.staff_acts.act_statement`); events written before staff signing have none."""

    # ``id``: chosen before the event, so the requester's signature can name it (ledger.app.flags)
    @event("Requested")
    def __init__(
        self,
        id: UUID,
        agency: str,
        kind: str,
        subject: str,
        flags: list[str],
        reason: str,
        review_date: str | None,
        requested_by: str,
        approvals_required: int,
        case_id: UUID | None,
        explanation: str,
        body_request_id: UUID | None,
        staff_signature: dict[str, str] | None = None,
        provisional: bool = False,
    ) -> None:
        self.agency = agency
        self.kind = kind
        # an emergency flag set by one designated person (approvals_required 0), co-approved afterwards
        self.provisional = provisional
        self.co_approved_by: str | None = None
        self.escalated_to: list[str] = []
        self.subject = subject
        self.flags = sorted(flags)
        self.reason = reason
        self.review_date = review_date
        self.requested_by = requested_by
        self.approvals_required = approvals_required
        self.case_id = case_id
        self.explanation = explanation
        self.body_request_id = body_request_id
        self.approvals: list[str] = []
        self.status = RequestStatus.PENDING.value
        self.decided_by: str | None = None
        self.acts: list[dict[str, str]] = []
        self._act(REQUESTED, requested_by, "", staff_signature)

    def _act(self, act: str, staff: str, note: str, signed: dict[str, str] | None) -> None:
        if signed is not None:
            self.acts.append({"act": act, "staff": staff, "note": note_digest(note), **signed})

    def digest(self) -> str:
        """What each act signs about this request (:func:`ledger.domain.staff_acts.request_digest`)."""
        return request_digest(
            self.agency,
            str(self.id),
            self.kind,
            self.subject,
            self.flags,
            self.review_date,
            self.approvals_required,
            self.details(),
        )

    def details(self) -> str:
        case, body = self.case_id, self.body_request_id
        return details_digest(self.reason, self.explanation, str(case) if case else None, str(body) if body else None)

    def evidence(self) -> dict[str, object]:
        """The signatures a peer checks on the resulting Protection event (ledger.domain.staff_acts)."""
        out: dict[str, object] = {
            "approvals_required": self.approvals_required,
            "details": self.details(),
            "acts": list(self.acts),
        }
        if self.provisional:
            out["provisional"] = True
        return out

    def check_pending(self) -> None:
        if self.status != RequestStatus.PENDING.value:
            raise StateConflict(f"request is {self.status}, not pending")

    def check_not_requester(self, staff: str, what: str) -> None:
        if staff == self.requested_by:
            raise SelfApprovalError(f"the requester cannot {what} their own request (four eyes)")

    def approve(self, by: str, note: str = "", staff_signature: dict[str, str] | None = None) -> None:
        self.check_pending()
        self.check_not_requester(by, "approve")
        if by in self.approvals:  # not a four-eyes refusal (403): the state already holds this approval (409)
            raise StateConflict(f"{by} has already approved this request; another approver is needed")
        self._approved(by=by, note=note, staff_signature=staff_signature)

    @event("Approved")
    def _approved(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self._act(APPROVED, by, note, staff_signature)
        self.approvals.append(by)
        if len(self.approvals) >= self.approvals_required:
            self.status = RequestStatus.APPROVED.value

    def reject(self, by: str, reason: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_pending()
        self.check_not_requester(by, "reject")
        self._rejected(by=by, reason=reason, staff_signature=staff_signature)

    @event("Rejected")
    def _rejected(self, by: str, reason: str, staff_signature: dict[str, str] | None = None) -> None:
        self._act(REJECTED, by, reason, staff_signature)
        self.status = RequestStatus.REJECTED.value
        self.decided_by = by

    def check_executable(self) -> None:
        if self.status == RequestStatus.EXECUTED.value:
            raise StateConflict(f"this request was already executed by {self.decided_by}: nothing more to do")
        if self.status == RequestStatus.PENDING.value:
            raise StateConflict(
                f"request is pending: it needs {self.approvals_required} approval(s) before an operator acts "
                f"({len(self.approvals)} so far)"
            )
        if self.status != RequestStatus.APPROVED.value:
            raise StateConflict(f"request is {self.status}: it cannot be executed")

    def execute(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_executable()
        self._executed(by=by, staff_signature=staff_signature)

    @event("Executed")
    def _executed(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self._act(EXECUTED, by, "", staff_signature)
        self.status = RequestStatus.EXECUTED.value
        self.decided_by = by

    def execute_provisional(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        """The designated person who requested an emergency flag sets it at once, alone."""
        if not self.provisional or by != self.requested_by:
            raise StateConflict("only a provisional request is executed by its own requester")
        self.check_pending()
        self._executed(by=by, staff_signature=staff_signature)

    def co_approve(self, by: str, note: str = "", staff_signature: dict[str, str] | None = None) -> None:
        """A second person confirms an emergency flag already in force (four eyes, after the fact)."""
        if not self.provisional or self.status != RequestStatus.EXECUTED.value:
            raise StateConflict("only a provisional flag already set is co-approved")
        if self.co_approved_by is not None:
            raise StateConflict(f"this provisional flag was already co-approved by {self.co_approved_by}")
        self.check_not_requester(by, "co-approve")
        self._co_approved(by=by, note=note, staff_signature=staff_signature)

    @event("CoApproved")
    def _co_approved(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self._act(APPROVED, by, note, staff_signature)
        self.co_approved_by = by

    def escalate(self, to: str, on: str) -> None:
        """Not co-approved within a business day: the clock tells ``to`` (recorded; the flag stays)."""
        self._escalated(to=to, on=on)

    @event("Escalated")
    def _escalated(self, to: str, on: str) -> None:
        self.escalated_to.append(to)


class Protection(LedgerAggregate):
    """The flags one agency holds on one subject (pseudonym). Shared: it is what protects everywhere."""

    SHARED = True

    # ``id``: the owning agency's keyed id for the subject (FlagLedger.ids.protection), never derivable from
    # the agency code and the pseudonym (see ledger.log.stream_ids)
    @event("Opened")
    def __init__(self, id: UUID, agency: str, subject: str) -> None:
        self.agency = agency
        self.subject = subject
        self.flags: dict[str, dict[str, Any]] = {}

    def active(self, flag: str) -> bool:
        return flag in self.flags

    def set_flags(
        self,
        flags: list[str],
        request_id: UUID,
        by: str,
        reason: str,
        review_date: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        already = [f for f in flags if f in self.flags]
        if already:
            raise StateConflict(f"{', '.join(already)} already set by {self.agency}: renew instead")
        self._set(
            agency=self.agency,
            subject=self.subject,
            flags=sorted(flags),
            request_id=request_id,
            by=by,
            reason=reason,
            review_date=review_date,
            evidence=evidence,
        )

    # ``evidence``: the request's staff signatures (ledger.domain.staff_acts.check_evidence); absent on events
    # written before staff signing
    @event("FlagsSet")
    def _set(
        self,
        agency: str,
        subject: str,
        flags: list[str],
        request_id: UUID,
        by: str,
        reason: str,
        review_date: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        for f in flags:
            self.flags[f] = {"request_id": request_id, "reason": reason, "review_date": review_date}

    def check_held(self, flags: list[str]) -> None:
        missing = [f for f in flags if f not in self.flags]
        if missing:
            raise NotFoundError(f"agency {self.agency} does not hold {', '.join(missing)} on this subject")

    def release(
        self, flags: list[str], request_id: UUID, by: str, explanation: str, evidence: dict[str, Any] | None = None
    ) -> None:
        self.check_held(flags)
        self._released(
            agency=self.agency,
            subject=self.subject,
            flags=sorted(flags),
            request_id=request_id,
            by=by,
            explanation=explanation,
            evidence=evidence,
        )

    @event("FlagsReleased")
    def _released(
        self,
        agency: str,
        subject: str,
        flags: list[str],
        request_id: UUID,
        by: str,
        explanation: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        for f in flags:
            del self.flags[f]

    def renew(
        self, flags: list[str], request_id: UUID, by: str, review_date: str, evidence: dict[str, Any] | None = None
    ) -> None:
        self.check_held(flags)
        stale = [f for f in flags if self.flags[f]["review_date"] >= review_date]
        if stale:
            raise StateConflict(f"the new review date must be later than the current one for {', '.join(stale)}")
        self._renewed(
            agency=self.agency,
            subject=self.subject,
            flags=sorted(flags),
            request_id=request_id,
            by=by,
            review_date=review_date,
            evidence=evidence,
        )

    @event("FlagsRenewed")
    def _renewed(
        self,
        agency: str,
        subject: str,
        flags: list[str],
        request_id: UUID,
        by: str,
        review_date: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        for f in flags:
            self.flags[f]["review_date"] = review_date


class BodyRequest(LedgerAggregate):
    """A protection body (support centre, child guidance centre) asks a municipality to set flags."""

    SHARED = True

    @event("Sent")
    def __init__(
        self, agency: str, municipality: str, subject: str, flags: list[str], reason: str, sent_by: str
    ) -> None:
        self.agency = agency
        self.municipality = municipality
        self.subject = subject
        self.flags = sorted(flags)
        self.reason = reason
        self.sent_by = sent_by
