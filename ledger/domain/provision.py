"""Information provision (情報照会・提供): a query about a subject, decided at the providing agency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.types import Flag, ProvisionStatus
from ledger.errors import Code, SelfApprovalError, StateConflict


def must_hold(national_flags: Mapping[str, Sequence[str]]) -> bool:
    """The holding rule of the request path (Point 4): a request about a person is held for manual review
    whenever any agency holds ``NO_AUTO_RESPONSE`` on them nationwide, whoever asks and whatever for.

    ``national_flags`` is the nationwide state of the person: flag → holding agencies. The live request path
    (:meth:`ledger.app.FlagLedger.request_provision`) and the auditors' as-of replay both decide with this.
    """
    return bool(national_flags.get(Flag.NO_AUTO_RESPONSE.value))


class ProvisionRequest(LedgerAggregate):
    """Owned by the providing agency, whose intermediate server receives the query.

    Every request is a provision record (情報提供等記録) from the moment it is received; its outcome
    follows. A held request is only ever left by an approved decision: it cannot be lost.
    """

    SHARED = True

    @event("Received")
    def __init__(
        self,
        agency: str,
        querier: str,
        subject: str,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str,
    ) -> None:
        self.agency = agency
        self.querier = querier
        self.subject = subject
        self.legal_item = legal_item
        self.procedure = procedure
        self.info_kind = info_kind
        self.applicant = applicant
        self.status: str | None = None
        self.proposal: dict[str, str] | None = None
        self.proposal_version: int | None = None  # the version of the DecisionProposed event standing now
        self.batched = False  # a staff-made answer released only at the provider's batch time (issue 21)
        self.released_batch: str | None = None  # the batch instant the answer was released at
        self.reopened = False  # the hub refused the decision as taken on stale advice: decided again (issue 19)

    @event("AutoProvided")
    def provide_automatically(self) -> None:
        self.status = ProvisionStatus.PROVIDED.value

    # ``flags``: the person's nationwide flags when the request arrived (every node knows them), whatever the
    # reason it needs staff; the reason itself stays at the provider (ledger.domain.answers.HeldFile).
    # ``batched``: its answer is released at a batch time; absent (False) on events recorded before issue 21
    @event("Held")
    def hold(self, flags: list[str], batched: bool = False) -> None:
        self.status = ProvisionStatus.HELD.value
        self.batched = batched

    @property
    def decided(self) -> bool:
        return self.status in (ProvisionStatus.PROVIDED_MANUALLY.value, ProvisionStatus.REFUSED.value)

    @property
    def answer_released(self) -> bool:
        """Whether the querier may see the decision: at once for automatic answers and for requests held
        before batch release existed, otherwise from the provider's batch time on."""
        return not self.batched or self.released_batch is not None

    def release(self, batch: str) -> None:
        """Release the staff-made answer to the querier at the batch instant ``batch`` (ISO time)."""
        if not self.decided:
            raise StateConflict(f"request is {self.status}: nothing is decided to release")
        if self.answer_released:
            raise StateConflict("this answer was already released")
        self._released(batch=batch)

    @event("Released")
    def _released(self, batch: str) -> None:
        self.released_batch = batch

    def check_held(self) -> None:
        if self.status != ProvisionStatus.HELD.value:
            raise StateConflict(f"request is {self.status}, not held")

    def propose(self, decision: str, applicant_check: str, by: str, note: str) -> None:
        self.check_held()
        if decision not in ("provide", "refuse"):
            raise StateConflict("decision must be 'provide' or 'refuse'")
        self._proposed(decision=decision, applicant_check=applicant_check, by=by, note=note)

    @event("DecisionProposed")
    def _proposed(self, decision: str, applicant_check: str, by: str, note: str) -> None:
        self.proposal = {"decision": decision, "applicant_check": applicant_check, "by": by}
        self.proposal_version = self.version + 1  # this event's own version (applied before it is counted)

    def approve_decision(self, by: str, proposal_version: int) -> None:
        """Approve the proposal the approver saw, named by its version: a proposal replaced since (the
        reviewer proposed again after the approver looked) is refused, so no one approves what they never saw."""
        self.check_held()
        if self.proposal is None or self.proposal_version is None:
            raise StateConflict("no decision has been proposed for this held request")
        if self.proposal["by"] == by:
            raise SelfApprovalError("the reviewer who proposed the decision cannot approve it (four eyes)")
        if proposal_version != self.proposal_version:
            raise StateConflict(
                "the proposal you approve is not the current one (it was proposed again since): reload the held "
                "request, review the current proposal and approve that one",
                code=Code.STALE_PROPOSAL,
            )
        if self.proposal["decision"] == "provide":
            self._provided_manually(approved_by=by, proposal_version=proposal_version)
        else:
            self._refused(approved_by=by, proposal_version=proposal_version)

    # ``proposal_version`` names the DecisionProposed event approved; events recorded before it existed lack it
    @event("ManuallyProvided")
    def _provided_manually(self, approved_by: str, proposal_version: int | None = None) -> None:
        self.status = ProvisionStatus.PROVIDED_MANUALLY.value

    @event("Refused")
    def _refused(self, approved_by: str, proposal_version: int | None = None) -> None:
        self.status = ProvisionStatus.REFUSED.value

    def reopen(self) -> bool:
        """Held again for a new four-eyes decision: the hub refused the one made here because holders' advice
        reached it after the deadline's escalation and before the decision (``decide_again``,
        ``consumers.linkage_decisions.reopen``). Once per request, and only a decided one: the hub asks once,
        and a replay of its message finds the request held or reopened already (False, nothing recorded).
        Nothing is answered by it — the request waits for the staff again (never automatic)."""
        if self.reopened or not self.decided:
            return False
        self._reopened()
        return True

    # the batch the first decision was released at stays: the new decision is released when it is made
    @event("Reopened")
    def _reopened(self) -> None:
        self.status = ProvisionStatus.HELD.value
        self.proposal = None
        self.proposal_version = None
        self.reopened = True


class ProbeNotice(LedgerAggregate):
    """Tells the agency that set a flag that someone asked about the protected person (§51 BMG style)."""

    SHARED = True

    @event("Sent")
    def __init__(
        self, agency: str, holders: list[str], request_id: UUID, querier: str, procedure: str, legal_item: int
    ) -> None:
        self.agency = agency
        self.holders = sorted(holders)
        self.request_id = request_id
        self.querier = querier
        self.procedure = procedure
        self.legal_item = legal_item
