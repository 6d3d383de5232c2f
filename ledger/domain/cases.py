"""Intake (Point 1): a protection case opened on consultation. Local only: notes never leave the node."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import StateConflict

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
