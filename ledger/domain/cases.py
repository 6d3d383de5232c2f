"""Intake (Point 1): a protection case opened on consultation. Local only: notes never leave the node.

Companions (同伴者, issue 21): children who fled with the victim are listed on the case. A companion is proposed
with a flag request on them (the request is the approval: four eyes, signed as every flag change) and attached
when that request is executed, so the companion is protected by flags of their own, held like the victim's."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import StateConflict


class CompanionRelation(StrEnum):
    CHILD = "child"  # the victim's child (子)
    OTHER = "other"  # another household member who fled with the victim


CHECKLIST_ITEMS = (
    "flag_restrictions_explained",  # the victim's own Mynaportal use is restricted too
    "resident_record_move_recommended",
    "number_change_recommended",
    "proxy_cancellation_advised",
)


class ProtectionCase(LedgerAggregate):
    @event("Opened")
    def __init__(
        self,
        agency: str,
        victim: str,
        perpetrators: list[str],
        reason: str,
        checklist: dict[str, bool],
        proxies_to_cancel: list[str],
        notes: str,
        opened_by: str,
    ) -> None:
        self.agency = agency
        self.victim = victim
        self.perpetrators = list(perpetrators)
        self.reason = reason
        self.checklist = dict(checklist)
        self.proxies_to_cancel = list(proxies_to_cancel)
        self.notes = notes
        self.opened_by = opened_by
        self.open = True
        # companion pseudonym → {"relation", "request_id", "attached": bool}
        self.companions: dict[str, dict[str, Any]] = {}

    def check_open(self) -> None:
        if not self.open:
            raise StateConflict("the case is closed")

    def add_perpetrator(self, subject: str, by: str) -> None:
        self.check_open()
        if subject in self.perpetrators or subject == self.victim:
            raise StateConflict("that person is already on the case")
        self._perpetrator_added(subject=subject, by=by)

    @event("PerpetratorAdded")
    def _perpetrator_added(self, subject: str, by: str) -> None:
        self.perpetrators.append(subject)

    def check_new_companion(self, subject: str) -> None:
        self.check_open()
        if subject == self.victim or subject in self.perpetrators:
            raise StateConflict("a companion is neither the victim nor a perpetrator of the case")
        if subject in self.companions:
            raise StateConflict("that companion is already on the case")

    def propose_companion(self, subject: str, relation: str, request_id: UUID, by: str) -> None:
        """List ``subject`` as a companion, with the flag request (``request_id``) that protects them."""
        self.check_new_companion(subject)
        self._companion_proposed(subject=subject, relation=relation, request_id=request_id, by=by)

    @event("CompanionProposed")
    def _companion_proposed(self, subject: str, relation: str, request_id: UUID, by: str) -> None:
        self.companions[subject] = {"relation": relation, "request_id": str(request_id), "attached": False}

    def companion_of(self, request_id: UUID) -> str | None:
        """The companion whose proposal ``request_id`` is, not attached yet."""
        return next(
            (s for s, c in self.companions.items() if c["request_id"] == str(request_id) and not c["attached"]), None
        )

    def attach_companion(self, subject: str, request_id: UUID, by: str) -> None:
        """The companion's flag request was approved and executed: they are attached."""
        if self.companion_of(request_id) != subject:
            raise StateConflict("no companion proposal waits on that request")
        self._companion_attached(subject=subject, request_id=request_id, by=by)

    @event("CompanionAttached")
    def _companion_attached(self, subject: str, request_id: UUID, by: str) -> None:
        self.companions[subject]["attached"] = True

    @property
    def attached_companions(self) -> list[str]:
        return sorted(s for s, c in self.companions.items() if c["attached"])

    def update_checklist(self, items: dict[str, Any], by: str) -> None:
        self.check_open()
        self._checklist_updated(items={k: bool(v) for k, v in items.items()}, by=by)

    @event("ChecklistUpdated")
    def _checklist_updated(self, items: dict[str, bool], by: str) -> None:
        self.checklist.update(items)

    def close(self, by: str, note: str) -> None:
        self.check_open()
        self._closed(by=by, note=note)

    @event("Closed")
    def _closed(self, by: str, note: str) -> None:
        self.open = False
