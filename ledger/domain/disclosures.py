"""A person's provision records handed out outside the portal: the answer to a disclosure request (個人情報の
開示請求) and the counter's printout (issue 21, "Other channels"; docs/channels.md).

Each hand-out is recorded before the document leaves the agency: who handled it, for whom (the subject) and who
asked (the subject or their proxy), how many records were shown and how many the non-disclosure filter withheld —
never which, nor who queried them (the withheld records' queriers are what the filter protects). Local: the
count says that somebody protects the person or the perpetrator, which peers have no need to know.
"""

from __future__ import annotations

from enum import StrEnum

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.bounds import Bound

__all__ = ["REFERENCE", "Channel", "DisclosureRecord"]

REFERENCE = Bound(64)  # the agency's own number for a request (受付番号)


class Channel(StrEnum):
    DISCLOSURE = "disclosure"  # 開示請求: the records this agency holds (as querier or provider) on the person
    PRINTOUT = "printout"  # 窓口での印刷: the portal's display, printed at a counter


class DisclosureRecord(LedgerAggregate):
    """One document of a person's provision records, as handed out (see the module docstring)."""

    @event("Made")
    def __init__(
        self,
        agency: str,
        staff: str,
        subject: str,
        asked_by: str,
        access: str,
        channel: str,
        shown: int,
        withheld: int,
        reference: str,
    ) -> None:
        self.agency = agency
        self.staff = staff
        self.subject = subject
        self.asked_by = asked_by  # the pseudonym of who asked: the subject, or a registered proxy
        self.access = access  # "self" | "proxy", decided as the portal decides it
        self.channel = channel
        self.shown = shown
        self.withheld = withheld
        self.reference = reference  # the agency's own number for the request (受付番号), may be empty
