"""A guardian or proxy barred from acting for a protected person (issue 21, docs/year.md).

The perpetrator is often the children's legal guardian (親権者, 法定代理人) and so, on paper, entitled to act for
them: to register as their Mynaportal proxy and read what they read. A :class:`GuardianBar` records, by the
protecting agency with four eyes, that ``guardian`` may not act for ``subject``; while any flag protects the
subject, the portal refuses proxy access through the barred person and no agency registers them as proxy.

Shared: the portal's decisions (:mod:`projections.verified`) are made on every node from the verified log. It
names two pseudonyms, as a ``ProxyRegistration`` does; it only ever takes access away.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import SelfApprovalError, StateConflict

__all__ = ["GuardianBar", "GuardianRelation"]


class GuardianRelation(StrEnum):
    PARENT = "parent"  # 親権者
    LEGAL_GUARDIAN = "legal_guardian"  # 法定代理人 (未成年後見人 and others)
    PROXY = "proxy"  # a Mynaportal proxy (代理人) with no legal standing of its own


class GuardianBar(LedgerAggregate):
    """``guardian`` barred from acting for ``subject``: proposed by one person, in force once another approves,
    until lifted (also with four eyes)."""

    SHARED = True

    # ``id``: random, chosen before the event so the proposer's signature can name it (a bar lifted may be
    # proposed again, as a new stream)
    @event("Proposed")
    def __init__(
        self,
        id: UUID,
        agency: str,
        subject: str,
        guardian: str,
        relation: str,
        proposed_by: str,
        staff_signature: dict[str, str] | None = None,
    ) -> None:
        self.agency = agency
        self.subject = subject
        self.guardian = guardian
        self.relation = relation
        self.proposed_by = proposed_by
        self.approved_by: str | None = None
        self.lift_proposed_by: str | None = None
        self.lifted_by: str | None = None

    @property
    def in_force(self) -> bool:
        return self.approved_by is not None and self.lifted_by is None

    def check_approvable(self, by: str) -> None:
        if self.lifted_by is not None:
            raise StateConflict("this bar was lifted: propose a new one")
        if self.approved_by is not None:
            raise StateConflict(f"this bar was already approved by {self.approved_by}")
        if by == self.proposed_by:
            raise SelfApprovalError("the person who proposed the bar cannot approve it (four eyes)")

    def approve(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_approvable(by)
        self._approved(by=by, staff_signature=staff_signature)

    @event("Approved")
    def _approved(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.approved_by = by

    def check_liftable(self, by: str, *, proposing: bool) -> None:
        if not self.in_force:
            raise StateConflict("the bar is not in force")
        if proposing and self.lift_proposed_by is not None:
            raise StateConflict(f"lifting was already proposed by {self.lift_proposed_by}: it needs an approver")
        if not proposing and self.lift_proposed_by is None:
            raise StateConflict("no lifting was proposed: it is proposed, then approved by another person")
        if not proposing and by == self.lift_proposed_by:
            raise SelfApprovalError("the person who proposed lifting the bar cannot approve it (four eyes)")

    def propose_lift(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_liftable(by, proposing=True)
        self._lift_proposed(by=by, note=note, staff_signature=staff_signature)

    @event("LiftProposed")
    def _lift_proposed(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self.lift_proposed_by = by

    def lift(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_liftable(by, proposing=False)
        self._lifted(by=by, staff_signature=staff_signature)

    @event("Lifted")
    def _lifted(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.lifted_by = by
