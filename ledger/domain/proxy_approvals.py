"""A holding agency's approval of a named proxy for a person it protects (issue 19, docs/linkage.md).

In the hub topology the portal refuses every proxy view while a flag applies to the person — unless every holder
approved that proxy. This is the holder's side: one staff member proposes the approval (a requester), another
approves it (an approver), each signing with their own staff key; only then is it in force and the node's bridge
tells the hub (``consumers.linkage_bridge``). A withdrawal takes two people as well and ends it at the hub.

Local: nothing here is published to peers. It names two of the agency's own pseudonyms (in hub mode its codes),
and what leaves the node is the hub's ``proxy_approval`` message only.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.four_eyes import ActWords, FourEyesAct

__all__ = ["HolderProxyApproval"]


class HolderProxyApproval(LedgerAggregate, FourEyesAct):
    """``proxy`` approved to read ``subject``'s portal page while this agency protects them: proposed by one person,
    in force once another approves, until withdrawn (also with four eyes)."""

    WORDS = ActWords(
        thing="proxy approval", ended="withdrawn", ending="withdrawing", end="withdrawal", own_end="the withdrawal"
    )
    # the key each act's signature is kept under in ``signatures`` (what the bridge reads)
    _SIGNED_AS: ClassVar[dict[str, str]] = {
        "approved": "approved",
        "end_proposed": "withdrawal_proposed",
        "ended": "withdrawn",
    }

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
        self.open_act(proposed_by)
        # each act's staff signature, by act: what the bridge carries to the hub, which checks them too
        self.signatures: dict[str, dict[str, str]] = {"proposed": dict(staff_signature or {})}

    _approved = event("Approved")(FourEyesAct.record_approval)
    _end_proposed = event("WithdrawalProposed")(FourEyesAct.record_end_proposal)
    _ended = event("Withdrawn")(FourEyesAct.record_end)

    def keep_signature(self, step: str, staff_signature: dict[str, str] | None) -> None:
        self.signatures[self._SIGNED_AS[step]] = dict(staff_signature or {})

    check_withdrawable = FourEyesAct.check_endable
    propose_withdrawal = FourEyesAct.propose_end
    withdraw = FourEyesAct.end

    @property
    def withdrawal_proposed_by(self) -> str | None:
        return self.end_proposed_by

    @property
    def withdrawn_by(self) -> str | None:
        return self.ended_by
