"""Operators' decisions on parked (poison) messages that need four eyes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id
from ledger.errors import SelfApprovalError, StateConflict


class RevokedKeyAcceptance(LedgerAggregate):
    """Applying one parked event signed by a key revoked since (``revoked_key_late``), four eyes (local only).

    Whoever stole a key can backdate an event under it — a flag removal that lifts a protection nationwide —
    so a new event under a revoked key is parked, and applying it anyway is a privilege: one administrator
    proposes it, stating how the originating agency confirmed it sent that very event, and a second, different
    one approves before it is replayed. The aggregate names the parked message (its local id and the SHA-256
    of its bytes, which the replay must still match) and the event inside it, so an auditor sees who let
    which event in. One per agency and message bytes.
    """

    @staticmethod
    def create_id(agency: str, digest: str, **_: Any) -> UUID:
        return stable_id("revoked-key-acceptance", agency, digest)

    @event("Proposed")
    def __init__(
        self,
        agency: str,
        digest: str,
        parked_id: int,
        event_id: str,
        origin: str,
        key_id: str,
        stream: str,
        version: int,
        topic: str,
        proposed_by: str,
        note: str,
    ) -> None:
        self.agency = agency
        self.digest = digest
        self.parked_id = parked_id
        self.event_id = event_id
        self.proposed_by = proposed_by
        self.approved_by: str | None = None

    def approve(self, by: str, note: str) -> None:
        if self.approved_by is not None:
            raise StateConflict("applying this parked event was already approved")
        if by == self.proposed_by:
            raise SelfApprovalError(
                "the administrator who proposed applying the event cannot approve it too (four eyes)"
            )
        self._approved(by=by, note=note)

    @event("Approved")
    def _approved(self, by: str, note: str) -> None:
        self.approved_by = by
