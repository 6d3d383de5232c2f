"""Answers that need staff (issue 21): the provider's answering policy, its notes on the copies it holds, and the
file it keeps on each held request (why it was held, when it is due, who was told it is overdue).

From the querying side every answer that needs staff looks the same (``ledger.app.values.QuerierAnswer``): a
flag, an item the provider answers by hand by policy, no data found (該当なし) and a provider-side check all
give ``in_progress``, and every staff-made answer is released at the provider's next batch time. Why a request
was held is recorded here only, in local events that never leave the provider's node.

Defaults (each a policy the agency's administrator may change, a recorded event): batch times 10:00, 14:00 and
16:30 Japan time — the three daily release windows of the issue's example, not a legal figure; a due date five
business days (days public offices are open: ledger/domain/calendar.py) after the request arrived — a
configurable working figure, not one set by the My Number Act; escalation to the approvers on the first day past
due and to the agency's administrators two business days after that.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id
from ledger.domain.calendar import is_business_day
from ledger.domain.law import catalogue
from ledger.errors import Code, InputError, RuleViolation, StateConflict

JST = timezone(timedelta(hours=9), "JST")  # no daylight saving in Japan: a fixed offset is the local time
DEFAULT_BATCH_TIMES = ("10:00", "14:00", "16:30")
DEFAULT_DUE_BUSINESS_DAYS = 5
ADMIN_AFTER_BUSINESS_DAYS = 2  # past due this long, the administrators are told too
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class HoldReason(StrEnum):
    """Why a request needs staff. Recorded at the provider only; the querier sees none of it."""

    FLAG = "flag"  # NO_AUTO_RESPONSE held somewhere on the person
    POLICY = "policy"  # the provider answers this item by hand
    NO_DATA = "no_data"  # 該当なし: no copy of this information for the person
    CHECK = "check"  # the provider is checking its copy for the person (e.g. a correction under way)


class ManualKind(StrEnum):
    """What a provider's policy may name as always answered by hand."""

    LEGAL_ITEM = "legal_item"
    PROCEDURE = "procedure"
    INFO_KIND = "info_kind"


class CopyState(StrEnum):
    """What the provider's intermediate server says of its copy of one kind of information about a person."""

    NO_DATA = "no_data"
    CHECK = "check"
    REGISTERED = "registered"  # a copy is held: answered automatically again


# -- time: batch slots and business days -------------------------------------------------------------------
def batch_times(values: list[str] | tuple[str, ...]) -> list[str]:
    out = sorted(set(values))
    if not 1 <= len(out) <= 8 or any(not _HHMM.fullmatch(v) for v in out):
        raise InputError("batch times are 1-8 local times of day as HH:MM (e.g. 10:00,14:00,16:30)", field="times")
    return out


def _slots(day: date, times: list[str]) -> list[datetime]:
    return [datetime.combine(day, time(int(t[:2]), int(t[3:])), JST) for t in times]


def last_batch(at: datetime, times: list[str]) -> datetime:
    """The latest batch instant at or before ``at`` (today's or an earlier day's)."""
    local = at.astimezone(JST)
    day = local.date()
    while True:
        past = [s for s in _slots(day, times) if s <= local]
        if past:
            return past[-1]
        day -= timedelta(days=1)


def next_batch(after: datetime, times: list[str]) -> datetime:
    """The first batch instant strictly after ``after``: when an answer decided at ``after`` is released."""
    local = after.astimezone(JST)
    day = local.date()
    while True:
        later = [s for s in _slots(day, times) if s > local]
        if later:
            return later[0]
        day += timedelta(days=1)


def add_business_days(start: date, days: int) -> date:
    """``days`` days public offices are open after ``start`` (ledger/domain/calendar.py)."""
    d = start
    while days > 0:
        d += timedelta(days=1)
        if is_business_day(d):
            days -= 1
    return d


def local_day(at: datetime) -> date:
    return at.astimezone(JST).date()


# -- the provider's answering policy -----------------------------------------------------------------------
def _check_in_catalogue(kind: ManualKind, value: str) -> None:
    """A value no query can carry (not in the law catalogue: a typo, a retired item) would never match: the
    administrator would believe the item is answered by hand while it is still answered automatically."""
    cat = catalogue()
    if kind is ManualKind.LEGAL_ITEM:
        cat.basis(int(value))  # RuleViolation unknown_legal_basis, naming the known items
        return
    names = cat.names(kind.value)
    if value not in names:
        raise RuleViolation(
            f"{kind.value} {value} is not in the law catalogue (known: {', '.join(sorted(names))})",
            code=Code.PROCEDURE_NOT_IN_BASIS if kind is ManualKind.PROCEDURE else Code.INFO_KIND_NOT_PERMITTED,
        )


class AnswerPolicy(LedgerAggregate):
    """One per agency, local: batch times, the due-date rule and the items always answered by hand."""

    @staticmethod
    def create_id(agency: str, **_: Any) -> UUID:
        return stable_id("answer-policy", agency)  # names an agency, no person

    @event("Opened")
    def __init__(self, agency: str, by: str) -> None:
        self.agency = agency
        self.batch_times = list(DEFAULT_BATCH_TIMES)
        self.due_business_days = DEFAULT_DUE_BUSINESS_DAYS
        self.manual: dict[str, list[str]] = {k.value: [] for k in ManualKind}

    def set_batch_times(self, times: list[str], by: str) -> None:
        self._batch_times_changed(times=batch_times(times), by=by)

    @event("BatchTimesChanged")
    def _batch_times_changed(self, times: list[str], by: str) -> None:
        self.batch_times = list(times)

    def set_due_days(self, days: int, by: str) -> None:
        if not isinstance(days, int) or not 1 <= days <= 30:
            raise InputError("the due date is 1-30 business days after a request arrives", field="days")
        self._due_days_changed(days=days, by=by)

    @event("DueDaysChanged")
    def _due_days_changed(self, days: int, by: str) -> None:
        self.due_business_days = days

    def mark_manual(self, kind: ManualKind, value: str, by: str) -> None:
        if not value.strip():
            raise InputError("name the item answered by hand", field="value")
        if kind is ManualKind.LEGAL_ITEM and not (value.isdigit() and 1 <= int(value) <= 200):
            raise InputError("a legal item is the item number of table 2 (別表第二), 1-200", field="value")
        _check_in_catalogue(kind, value)
        if value in self.manual[kind.value]:
            raise StateConflict(f"{kind.value} {value} is already answered by hand")
        self._manual_marked(kind=kind.value, value=value, by=by)

    @event("ManualItemMarked")
    def _manual_marked(self, kind: str, value: str, by: str) -> None:
        self.manual[kind] = sorted({*self.manual[kind], value})

    def unmark_manual(self, kind: ManualKind, value: str, by: str) -> None:
        if value not in self.manual[kind.value]:
            raise StateConflict(f"{kind.value} {value} is not answered by hand by policy")
        self._manual_unmarked(kind=kind.value, value=value, by=by)

    @event("ManualItemUnmarked")
    def _manual_unmarked(self, kind: str, value: str, by: str) -> None:
        self.manual[kind] = [v for v in self.manual[kind] if v != value]

    def is_manual(self, legal_item: int, procedure: str, info_kind: str) -> bool:
        return (
            str(legal_item) in self.manual[ManualKind.LEGAL_ITEM.value]
            or procedure in self.manual[ManualKind.PROCEDURE.value]
            or info_kind in self.manual[ManualKind.INFO_KIND.value]
        )


class CopyNote(LedgerAggregate):
    """The provider's note on its copy of one kind of information about one person: none held (該当なし) or
    under check. Local; ``id``: the agency's keyed id for (person, information kind) (ledger.log.stream_ids)."""

    @event("Opened")
    def __init__(self, id: UUID, agency: str, subject: str, info_kind: str, state: str, by: str) -> None:
        self.agency = agency
        self.subject = subject
        self.info_kind = info_kind
        self.state = state

    def change(self, state: CopyState, by: str) -> None:
        if state.value == self.state:
            raise StateConflict(f"the copy is already noted as {state.value}")
        self._changed(state=state.value, by=by)

    @event("Changed")
    def _changed(self, state: str, by: str) -> None:
        self.state = state


class HeldFile(LedgerAggregate):
    """The provider's own file on one held request: the reason, the due date and the escalations. Local."""

    @staticmethod
    def create_id(request_id: UUID, **_: Any) -> UUID:
        return stable_id("held-file", str(request_id))  # a random request id: names no person

    @event("Opened")
    def __init__(self, agency: str, request_id: UUID, reason: str, received: str, due: str) -> None:
        self.agency = agency
        self.request_id = request_id
        self.reason = reason
        self.received = received
        self.due = due
        self.level = 0  # 0 not escalated, 1 approvers told, 2 administrators told
        self.released: str | None = None

    def escalation_due(self, today: date) -> int:
        """The escalation level ``today`` calls for: overdue never answers, it only tells more people."""
        due = date.fromisoformat(self.due)
        if self.released is not None or today <= due:
            return 0
        return 2 if today > add_business_days(due, ADMIN_AFTER_BUSINESS_DAYS) else 1

    def escalate(self, level: int, today: date) -> None:
        if level <= self.level:
            raise StateConflict("already escalated that far")
        self._escalated(level=level, to="administrator" if level == 2 else "approver", on=today.isoformat())

    @event("Escalated")
    def _escalated(self, level: int, to: str, on: str) -> None:
        self.level = level

    def close(self, batch: str) -> None:
        if self.released is not None:
            raise StateConflict("this held request's answer was already released")
        self._closed(batch=batch)

    @event("Closed")
    def _closed(self, batch: str) -> None:
        self.released = batch
