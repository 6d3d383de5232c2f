"""Grants of a privileged role (approver, operator, reviewer, administrator): two administrators, each step an event.

One administrator proposes giving a staff member of their agency a privileged role; it takes effect only
when a second, different administrator of the same agency approves (the proposal's ``Approved`` and the
member's ``Staff.RoleGranted`` are saved together). Another administrator may reject it, the proposer may
withdraw it. An agency with a single administrator cannot reach a second one: there the **break-glass** path
lets an administrator of its prefecture co-approve, stating why — hosted on the same node, or on the
prefecture's own node with a co-approval signed by their staff key and embedded in the event (``co_approval``,
re-checked by ``audit verify``). That step is its own event (``BreakGlassApproved``), so it is never silent
(docs/staff.md). Local only: staff never leave the node.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.duties import is_own_prefecture
from ledger.errors import Code, SelfApprovalError, StateConflict

__all__ = ["GrantStatus", "RoleGrant", "is_own_prefecture"]


class GrantStatus:
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class RoleGrant(LedgerAggregate):
    """``staff_id`` at ``agency`` is to receive ``role``; ``at_enrolment`` says it came with the enrolment."""

    @event("Proposed")
    def __init__(
        self,
        id: UUID,  # chosen before the event, so that the proposer signs this grant
        agency: str,
        staff_id: str,
        role: str,
        proposed_by: str,
        note: str,
        at_enrolment: bool,
        signature: dict[str, Any] | None = None,
    ) -> None:
        """``signature``: the proposer's staff-key signature over the grant (``staff_acts.role_statement``),
        carried to the roster when the grant takes effect (None on a log from before staff signing)."""
        self.agency = agency
        self.staff_id = staff_id
        self.role = role
        self.proposed_by = proposed_by
        self.at_enrolment = at_enrolment
        self.signature = signature
        self.status = GrantStatus.PENDING
        self.decided_by: str | None = None
        self.decided_by_agency: str | None = None

    def check_open(self) -> None:
        if self.status != GrantStatus.PENDING:
            raise StateConflict(f"this role grant is already {self.status}", code=Code.GRANT_CLOSED)

    def _check_second_person(self, by: str, by_agency: str) -> None:
        if by_agency == self.agency and by == self.proposed_by:
            raise SelfApprovalError(
                "the administrator who proposed the grant cannot approve it too: a second administrator must"
            )
        if by_agency == self.agency and by == self.staff_id:
            raise SelfApprovalError("nobody approves a role for themselves")

    def approve(self, by: str, note: str) -> None:
        self.check_open()
        self._check_second_person(by, self.agency)
        self._approved(by=by, note=note)

    @event("Approved")
    def _approved(self, by: str, note: str) -> None:
        self.status = GrantStatus.APPROVED
        self.decided_by = by
        self.decided_by_agency = self.agency

    def approve_break_glass(
        self, by: str, by_agency: str, note: str, co_approval: dict[str, Any] | None = None
    ) -> None:
        """A co-approving agency's administrator approves (the caller checked the agency may); ``co_approval``:
        their signed co-approval from their own node (``ledger.log.co_approval``), None when hosted here."""
        self.check_break_glass(by_agency, note)
        self._break_glass_approved(by=by, by_agency=by_agency, note=note, co_approval=co_approval)

    def check_break_glass(self, by_agency: str, note: str) -> None:
        """Refuse a break-glass approval of this grant by ``by_agency`` with ``note`` (before anything is signed)."""
        self.check_open()
        if by_agency == self.agency:
            raise StateConflict("break-glass is another agency's co-approval; at this agency use approve")
        if not note.strip():
            raise StateConflict("break-glass needs a note saying why (who asked, how it was confirmed)")

    @event("BreakGlassApproved")
    def _break_glass_approved(
        self, by: str, by_agency: str, note: str, co_approval: dict[str, Any] | None = None
    ) -> None:
        self.status = GrantStatus.APPROVED
        self.decided_by = by
        self.decided_by_agency = by_agency

    def reject(self, by: str, reason: str) -> None:
        self.check_open()
        if by == self.proposed_by:
            raise StateConflict("the proposer withdraws a grant (withdraw-grant), others reject it")
        self._rejected(by=by, reason=reason)

    @event("Rejected")
    def _rejected(self, by: str, reason: str) -> None:
        self.status = GrantStatus.REJECTED
        self.decided_by = by
        self.decided_by_agency = self.agency

    def withdraw(self, by: str, reason: str) -> None:
        self.check_open()
        if by != self.proposed_by:
            raise StateConflict("only the proposer withdraws a grant; another administrator rejects it")
        self._withdrawn(by=by, reason=reason)

    @event("Withdrawn")
    def _withdrawn(self, by: str, reason: str) -> None:
        self.status = GrantStatus.WITHDRAWN
        self.decided_by = by
        self.decided_by_agency = self.agency
