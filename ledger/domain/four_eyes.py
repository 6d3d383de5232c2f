"""The four-eyes lifecycles that several aggregates share: one person asks, another decides.

Two shapes, each a mixin for a :class:`ledger.domain.base.LedgerAggregate`:

- :class:`FourEyesAct` — proposed by one person, in force once another approves, until ended (lifted,
  withdrawn), which takes two people as well: :class:`ledger.domain.guardians.GuardianBar`,
  :class:`ledger.domain.proxy_approvals.HolderProxyApproval`.
- :class:`FourEyesRequest` — requested by one person, approved or rejected once by another:
  :class:`ledger.domain.erasure.ErasureRequest`, :class:`ledger.domain.identity.LinkRequest`.

The guards and the state each step leaves live here once. The events stay each aggregate's own: the aggregate
declares them (``_approved = event("Approved")(FourEyesAct.record_approval)``), so an event's class name, topic
(``module:Aggregate.Name``) and payload fields (the recording method's parameters) are what they were when the
events already in signed logs were made — a mixin's own ``@event`` would be named after the mixin instead
(tests/unit/domain/test_four_eyes_events.py holds the signed bytes to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ledger.domain.types import RequestStatus
from ledger.errors import SelfApprovalError, StateConflict

__all__ = ["ActWords", "FourEyesAct", "FourEyesRequest"]


@dataclass(frozen=True)
class ActWords:
    """How an act's refusals name it (they reach staff as they were: the words are each aggregate's)."""

    thing: str  # "bar": "this bar was already approved by …"
    ended: str  # "lifted": "this bar was lifted: propose a new one"
    ending: str  # "lifting": "lifting was already proposed by …"
    end: str  # "lifting": "no lifting was proposed"
    own_end: str  # "lifting the bar": "the person who proposed lifting the bar cannot approve it"


class FourEyesAct:
    """Proposed by ``proposed_by``; in force once another person approves; ended the same way (its end proposed
    by one person, approved by another). The aggregate declares ``_approved``, ``_end_proposed`` and ``_ended``
    as its events over :meth:`record_approval`, :meth:`record_end_proposal` and :meth:`record_end`."""

    WORDS: ClassVar[ActWords]

    proposed_by: str
    approved_by: str | None
    end_proposed_by: str | None
    ended_by: str | None

    if TYPE_CHECKING:  # the aggregate's events

        def _approved(self, by: str, staff_signature: dict[str, str] | None = None) -> None: ...

        def _end_proposed(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None: ...

        def _ended(self, by: str, staff_signature: dict[str, str] | None = None) -> None: ...

    def open_act(self, proposed_by: str) -> None:
        """The state a proposal starts in (called by the aggregate's creation event)."""
        self.proposed_by = proposed_by
        self.approved_by = None
        self.end_proposed_by = None
        self.ended_by = None

    @property
    def in_force(self) -> bool:
        return self.approved_by is not None and self.ended_by is None

    def check_approvable(self, by: str) -> None:
        w = self.WORDS
        if self.ended_by is not None:
            raise StateConflict(f"this {w.thing} was {w.ended}: propose a new one")
        if self.approved_by is not None:
            raise StateConflict(f"this {w.thing} was already approved by {self.approved_by}")
        if by == self.proposed_by:
            raise SelfApprovalError(f"the person who proposed the {w.thing} cannot approve it (four eyes)")

    def approve(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_approvable(by)
        self._approved(by=by, staff_signature=staff_signature)

    def check_endable(self, by: str, *, proposing: bool) -> None:
        w = self.WORDS
        if not self.in_force:
            raise StateConflict(f"the {w.thing} is not in force")
        if proposing and self.end_proposed_by is not None:
            raise StateConflict(f"{w.ending} was already proposed by {self.end_proposed_by}: it needs an approver")
        if not proposing and self.end_proposed_by is None:
            raise StateConflict(f"no {w.end} was proposed: it is proposed, then approved by another person")
        if not proposing and by == self.end_proposed_by:
            raise SelfApprovalError(f"the person who proposed {w.own_end} cannot approve it (four eyes)")

    def propose_end(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_endable(by, proposing=True)
        self._end_proposed(by=by, note=note, staff_signature=staff_signature)

    def end(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_endable(by, proposing=False)
        self._ended(by=by, staff_signature=staff_signature)

    # -- what each event records (its parameters are the event's payload fields: never rename them) ----------------

    def record_approval(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.approved_by = by
        self.keep_signature("approved", staff_signature)

    def record_end_proposal(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self.end_proposed_by = by
        self.keep_signature("end_proposed", staff_signature)

    def record_end(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.ended_by = by
        self.keep_signature("ended", staff_signature)

    def keep_signature(self, step: str, staff_signature: dict[str, str] | None) -> None:
        """An aggregate that carries its acts' staff signatures on (to the hub) keeps them here; by default the
        signed events are record enough."""


class FourEyesRequest:
    """Requested by ``requested_by``; decided once — approved or rejected — by another person. The aggregate
    declares ``_approved`` and ``_rejected`` as its events (``_rejected`` over :meth:`record_rejection`)."""

    WHAT: ClassVar[str]  # "erasure request": "the erasure request is approved, not pending"
    OWN_DECISION: ClassVar[str]  # the refusal of the requester's own decision

    requested_by: str
    status: str
    decided_by: str | None

    if TYPE_CHECKING:  # the aggregate's event

        def _rejected(self, by: str, reason: str) -> None: ...

    def open_request(self, requested_by: str) -> None:
        """The state a request starts in (called by the aggregate's creation event)."""
        self.requested_by = requested_by
        self.status = RequestStatus.PENDING.value
        self.decided_by = None

    def check_decidable(self, by: str) -> None:
        if self.status != RequestStatus.PENDING.value:
            raise StateConflict(f"the {self.WHAT} is {self.status}, not pending")
        if by == self.requested_by:
            raise SelfApprovalError(self.OWN_DECISION)

    def reject(self, by: str, reason: str) -> None:
        self.check_decidable(by)
        self._rejected(by=by, reason=reason)

    # -- what each event records (its parameters are the event's payload fields: never rename them) ----------------

    def record_approval(self, by: str, note: str) -> None:
        self.status = RequestStatus.APPROVED.value
        self.decided_by = by

    def record_rejection(self, by: str, reason: str) -> None:
        self.status = RequestStatus.REJECTED.value
        self.decided_by = by
