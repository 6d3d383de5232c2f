"""Moves of a protected person (転出/転入) and the named-risk decisions a release needs while protection is not
yet taken over (issue 21, docs/year.md).

A :class:`ResidenceChange` is shared: it is the handover request the new municipality reads in its queue. It
names the subject (a pseudonym, as a ``Protection`` event already does) and the two municipalities; the
municipality that takes over answers with its own ``FlagRequest`` and ``Protection`` (it never appends here).
A :class:`ReleaseDecision` is local: the old holder's explicit, approved acceptance of a named risk.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import SelfApprovalError, StateConflict

__all__ = ["LastHolderWarning", "MoveSource", "ReleaseDecision", "ResidenceChange", "RiskKind"]


class MoveSource(StrEnum):
    COUNTER = "counter"  # entered by staff at either municipality (転出届 at the old one, 転入届 at the new one)
    REGISTRY = "registry"  # received from the residence registry (住民基本台帳) as an event


class RiskKind(StrEnum):
    HANDOVER_GAP = "handover_gap"  # the person moved on and the new municipality does not hold yet


class ResidenceChange(LedgerAggregate):
    """A protected person moved from ``from_agency`` to ``to_agency`` on ``moved_on`` (recorded by ``agency``,
    one of the two)."""

    SHARED = True

    @event("Recorded")
    def __init__(
        self,
        agency: str,
        subject: str,
        from_agency: str | None,
        to_agency: str,
        moved_on: str,
        source: str,
        recorded_by: str,
    ) -> None:
        self.agency = agency
        self.subject = subject
        self.from_agency = from_agency
        self.to_agency = to_agency
        self.moved_on = moved_on
        self.source = source
        self.recorded_by = recorded_by


class ReleaseDecision(LedgerAggregate):
    """The old holder's decision to release although the risk ``risk`` (in words) stands: proposed by one
    person (``request_flag``), approved by another (``approve_flag``), used by one release at most."""

    # ``id``: chosen before the event, so the proposer's signature can name it
    @event("Proposed")
    def __init__(
        self,
        id: UUID,
        agency: str,
        subject: str,
        flags: list[str],
        kind: str,
        risk: str,
        proposed_by: str,
        staff_signature: dict[str, str] | None = None,
    ) -> None:
        self.agency = agency
        self.subject = subject
        self.flags = sorted(flags)
        self.kind = kind
        self.risk = risk
        self.proposed_by = proposed_by
        self.approved_by: str | None = None
        self.used_by: str | None = None  # the release request that relied on it

    @property
    def approved(self) -> bool:
        return self.approved_by is not None

    def approve(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        if by == self.proposed_by:
            raise SelfApprovalError("the person who named the risk cannot approve it (four eyes)")
        if self.approved:
            raise StateConflict(f"this decision was already approved by {self.approved_by}")
        self._approved(by=by, staff_signature=staff_signature)

    @event("Approved")
    def _approved(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.approved_by = by

    def covers(self, subject: str, flags: list[str], kind: str) -> bool:
        return (
            self.approved and self.used_by is None and self.subject == subject and self.kind == kind
            and set(flags) <= set(self.flags)
        )  # fmt: skip

    def use(self, request_id: UUID) -> None:
        if self.used_by is not None:
            raise StateConflict("this decision was already used by another release")
        self._used(request_id=request_id)

    @event("Used")
    def _used(self, request_id: UUID) -> None:
        self.used_by = str(request_id)


class LastHolderWarning(LedgerAggregate):
    """A release requested by ``agency`` would leave ``flags`` on ``subject`` with no holder anywhere: shared, so
    that every holder's queue shows it before it happens. Its own stream (not the Protection's): a warning never
    stands between a holding's events."""

    SHARED = True

    @event("Raised")
    def __init__(self, agency: str, subject: str, flags: list[str], request_id: UUID, by: str) -> None:
        self.agency = agency
        self.subject = subject
        self.flags = sorted(flags)
        self.request_id = request_id
        self.by = by
