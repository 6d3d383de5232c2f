"""A holding agency's approval of a named proxy for a person it protects (issue 19, docs/linkage.md).

In the hub topology the portal refuses every proxy view while a flag applies to the person — unless every holder
approved that proxy. This is the holder's side: one staff member proposes the approval (a requester), another
approves it (an approver), each signing with their own staff key; only then is it in force and the node's bridge
tells the hub (``consumers.linkage_bridge``). A withdrawal takes two people as well and ends it at the hub.

Local: nothing here is published to peers. It names two of the agency's own pseudonyms (in hub mode its codes),
and what leaves the node is the hub's ``proxy_approval`` message only.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import SelfApprovalError, StateConflict

__all__ = ["HolderProxyApproval"]


class HolderProxyApproval(LedgerAggregate):
    """``proxy`` approved to read ``subject``'s portal page while this agency protects them: proposed by one person,
    in force once another approves, until withdrawn (also with four eyes)."""

    # ``id``: random, chosen before the event so the proposer's signature can name it (a withdrawn approval may be
    # proposed again, as a new stream)
    @event("Proposed")
    def __init__(
        self,
        id: UUID,
        agency: str,
        subject: str,
        proxy: str,
        proposed_by: str,
        note: str = "",
        staff_signature: dict[str, str] | None = None,
    ) -> None:
        self.agency = agency
        self.subject = subject
        self.proxy = proxy
        self.proposed_by = proposed_by
        self.approved_by: str | None = None
        self.withdrawal_proposed_by: str | None = None
        self.withdrawn_by: str | None = None
        # each act's staff signature, by act: what the bridge carries to the hub, which checks them too
        self.signatures: dict[str, dict[str, str]] = {"proposed": dict(staff_signature or {})}

    @property
    def in_force(self) -> bool:
        return self.approved_by is not None and self.withdrawn_by is None

    def check_approvable(self, by: str) -> None:
        if self.withdrawn_by is not None:
            raise StateConflict("this proxy approval was withdrawn: propose a new one")
        if self.approved_by is not None:
            raise StateConflict(f"this proxy approval was already approved by {self.approved_by}")
        if by == self.proposed_by:
            raise SelfApprovalError("the person who proposed the proxy approval cannot approve it (four eyes)")

    def approve(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_approvable(by)
        self._approved(by=by, staff_signature=staff_signature)

    @event("Approved")
    def _approved(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.approved_by = by
        self.signatures["approved"] = dict(staff_signature or {})

    def check_withdrawable(self, by: str, *, proposing: bool) -> None:
        if not self.in_force:
            raise StateConflict("the proxy approval is not in force")
        if proposing and self.withdrawal_proposed_by is not None:
            raise StateConflict(
                f"withdrawing was already proposed by {self.withdrawal_proposed_by}: it needs an approver"
            )
        if not proposing and self.withdrawal_proposed_by is None:
            raise StateConflict("no withdrawal was proposed: it is proposed, then approved by another person")
        if not proposing and by == self.withdrawal_proposed_by:
            raise SelfApprovalError("the person who proposed the withdrawal cannot approve it (four eyes)")

    def propose_withdrawal(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_withdrawable(by, proposing=True)
        self._withdrawal_proposed(by=by, note=note, staff_signature=staff_signature)

    @event("WithdrawalProposed")
    def _withdrawal_proposed(self, by: str, note: str, staff_signature: dict[str, str] | None = None) -> None:
        self.withdrawal_proposed_by = by
        self.signatures["withdrawal_proposed"] = dict(staff_signature or {})

    def withdraw(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.check_withdrawable(by, proposing=False)
        self._withdrawn(by=by, staff_signature=staff_signature)

    @event("Withdrawn")
    def _withdrawn(self, by: str, staff_signature: dict[str, str] | None = None) -> None:
        self.withdrawn_by = by
        self.signatures["withdrawn"] = dict(staff_signature or {})
