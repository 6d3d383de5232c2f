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
from ledger.domain.four_eyes import ActWords, FourEyesAct

__all__ = ["GuardianBar", "GuardianRelation"]


class GuardianRelation(StrEnum):
    PARENT = "parent"  # 親権者
    LEGAL_GUARDIAN = "legal_guardian"  # 法定代理人 (未成年後見人 and others)
    PROXY = "proxy"  # a Mynaportal proxy (代理人) with no legal standing of its own


class GuardianBar(LedgerAggregate, FourEyesAct):
    """``guardian`` barred from acting for ``subject``: proposed by one person, in force once another approves,
    until lifted (also with four eyes)."""

    SHARED = True
    WORDS = ActWords(thing="bar", ended="lifted", ending="lifting", end="lifting", own_end="lifting the bar")

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
        self.open_act(proposed_by)

    _approved = event("Approved")(FourEyesAct.record_approval)
    _end_proposed = event("LiftProposed")(FourEyesAct.record_end_proposal)
    _ended = event("Lifted")(FourEyesAct.record_end)

    check_liftable = FourEyesAct.check_endable
    propose_lift = FourEyesAct.propose_end
    lift = FourEyesAct.end

    @property
    def lift_proposed_by(self) -> str | None:
        return self.end_proposed_by

    @property
    def lifted_by(self) -> str | None:
        return self.ended_by
