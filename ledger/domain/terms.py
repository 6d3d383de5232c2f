"""The support-measure term (住基 DV等支援措置): applied for (申出), one year, extended on the person's own request
(延長申出), reminded at 30 and 7 days, escalated when overdue, ended only by an approved lapse (issue 21,
docs/year.md). Local: the dates and who asked stay on the node; the flags' review dates are what peers see.

Nothing here touches a flag. An overdue term is escalated to people; a lapse is recorded by two of them; only a
release request (with its own approvals) lifts a flag.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.calendar import is_business_day
from ledger.errors import SelfApprovalError, StateConflict

__all__ = [
    "ADMIN_AFTER_DAYS",
    "REMINDER_DAYS",
    "SupportTerm",
    "next_business_day",
    "one_year_after",
]

REMINDER_DAYS = (30, 7)  # reminders this many days before the term ends
ADMIN_AFTER_DAYS = 7  # an overdue term goes to the agency administrator this many days after the approver
APPROVER, ADMINISTRATOR = "approver", "administrator"


def one_year_after(day: date) -> date:
    """The same day a year later (29 February → 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def next_business_day(moment: datetime) -> datetime:
    """The same time on the next day public offices are open (weekends, national holidays and the year-end
    closure skipped: ledger/domain/calendar.py)."""
    out = moment + timedelta(days=1)
    while not is_business_day(out.date()):
        out += timedelta(days=1)
    return out


class SupportTerm(LedgerAggregate):
    """One agency's support-measure term for one subject."""

    # ``id``: the agency's keyed id for the subject (ledger.log.stream_ids.StreamIds.term)
    @event("Applied")
    def __init__(self, id: UUID, agency: str, subject: str, applied_on: str, ends_on: str, recorded_by: str) -> None:
        self.agency = agency
        self.subject = subject
        self.applied_on = applied_on
        self.ends_on = ends_on
        self.extensions: list[str] = []  # the dates of each 延長申出
        self.reminded: list[str] = []  # "ENDS_ON/30", "ENDS_ON/7": one reminder per term end and distance
        self.escalated: list[str] = []  # "ENDS_ON/approver", "ENDS_ON/administrator"
        self.lapse_proposed_by: str | None = None
        self.lapsed_by: str | None = None

    @property
    def open(self) -> bool:
        return self.lapsed_by is None

    def check_open(self) -> None:
        if not self.open:
            raise StateConflict("the support-measure term has lapsed: record a new application (申出)")

    def request_extension(self, requested_on: str, by: str) -> None:
        """The person's 延長申出: the term runs a year from its current end."""
        self.check_open()
        if requested_on < self.applied_on:
            raise StateConflict("an extension request cannot come before the application")
        ends = one_year_after(date.fromisoformat(self.ends_on)).isoformat()
        self._extension_requested(requested_on=requested_on, ends_on=ends, by=by)

    @event("ExtensionRequested")
    def _extension_requested(self, requested_on: str, ends_on: str, by: str) -> None:
        self.extensions.append(requested_on)
        self.ends_on = ends_on
        self.lapse_proposed_by = None  # a proposed lapse is moot once the person asked to extend

    def due(self, today: date) -> list[tuple[str, str]]:
        """What the clock asks for today: ("reminder", "30"|"7") and ("escalation", "approver"|"administrator"),
        each once per term end."""
        if not self.open:
            return []
        ends = date.fromisoformat(self.ends_on)
        out: list[tuple[str, str]] = []
        for days in REMINDER_DAYS:
            if ends - timedelta(days=days) <= today < ends and f"{self.ends_on}/{days}" not in self.reminded:
                if days == 30 and today >= ends - timedelta(days=7):
                    continue  # already inside the 7-day window: the nearer reminder says it
                out.append(("reminder", str(days)))
        if today > ends and f"{self.ends_on}/{APPROVER}" not in self.escalated:
            out.append(("escalation", APPROVER))
        if today > ends + timedelta(days=ADMIN_AFTER_DAYS) and f"{self.ends_on}/{ADMINISTRATOR}" not in self.escalated:
            out.append(("escalation", ADMINISTRATOR))
        return out

    def remind(self, days: str, on: str) -> None:
        self._reminded(days=days, on=on, ends_on=self.ends_on)

    @event("Reminded")
    def _reminded(self, days: str, on: str, ends_on: str) -> None:
        self.reminded.append(f"{ends_on}/{days}")

    def escalate(self, to: str, on: str) -> None:
        self._escalated(to=to, on=on, ends_on=self.ends_on)

    @event("Escalated")
    def _escalated(self, to: str, on: str, ends_on: str) -> None:
        self.escalated.append(f"{ends_on}/{to}")

    def propose_lapse(self, by: str, note: str) -> None:
        self.check_open()
        if self.lapse_proposed_by is not None:
            raise StateConflict(f"a lapse was already proposed by {self.lapse_proposed_by}: it needs an approver")
        self._lapse_proposed(by=by, note=note)

    @event("LapseProposed")
    def _lapse_proposed(self, by: str, note: str) -> None:
        self.lapse_proposed_by = by

    def approve_lapse(self, by: str, note: str) -> None:
        self.check_open()
        if self.lapse_proposed_by is None:
            raise StateConflict("no lapse was proposed: a lapse is proposed, then approved by another person")
        if by == self.lapse_proposed_by:
            raise SelfApprovalError("the person who proposed the lapse cannot approve it (four eyes)")
        self._lapsed(by=by, note=note)

    @event("Lapsed")
    def _lapsed(self, by: str, note: str) -> None:
        self.lapsed_by = by
