"""What the application's commands take and return: actors, the querier's answer (the one mapping from a
provision request's status to what the querier learns), key-event problems, and which topics stay local."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from uuid import UUID

from ledger.domain.base import LedgerAggregate
from ledger.domain.types import (
    ProvisionStatus,
    agency_code,
    staff_id,
)
from ledger.errors import (
    InputError,
)

log = logging.getLogger("flagledger.ledger")
A = TypeVar("A", bound=LedgerAggregate)

CONCURRENT_CHANGE = "someone else changed this at the same time; nothing was recorded: reload it and try again"

log = logging.getLogger("flagledger.ledger")
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    agency: str
    staff: str

    @classmethod
    def parse(cls, value: str) -> Actor:
        """``131016/tanaka`` → Actor("131016", "tanaka")."""
        agency, sep, who = value.partition("/")
        if not sep:
            raise InputError("the actor must look like AGENCY/STAFF (e.g. 131016/tanaka)", field="actor")
        return cls(agency_code(agency, "the actor's agency"), staff_id(who, "the actor's staff id"))

    def __str__(self) -> str:
        return f"{self.agency}/{self.staff}"


class ProxyIndex(Protocol):
    """The proxy registrations of a pair of pseudonyms, any agency's (stream ids, from the views)."""

    def registrations(self, subject: str, proxy: str) -> list[UUID]: ...


class YearRowsReader(Protocol):
    """The year's candidate aggregates by kind (``projections.year_rows``): the app loads each from the verified
    log and tests it as a scan would."""

    def items(self, kind: str, agency: str | None = None, *, to_agency: str | None = None) -> list[UUID]: ...

    def latest_moves_to(self, agency: str) -> list[UUID]: ...

    def about(self, kind: str, refs: Iterable[str]) -> list[UUID]: ...


class FlagStateReader(Protocol):
    """Nationwide flag state as the request path reads it: flag → agencies holding it."""

    def flags_for(self, subject: str) -> dict[str, list[str]]: ...

    def linked(self, pseudonym: str) -> tuple[str, str] | None:
        """The active link (old, new) ``pseudonym`` is part of, by any agency; None if none."""
        ...

    def carried(self, pseudonym: str) -> list[str]:
        """Flags that protect ``pseudonym`` only because they were set on another number while the two were
        linked (kept after the unlink until their holder releases them)."""
        ...


@dataclass(frozen=True)
class QuerierAnswer:
    """What the querying agency (and anyone asking at its counter) learns. A held request and any other
    manual answer look exactly alike: no status, code, field or wording reveals a flag."""

    request_id: str
    status: str  # "answered" | "in_progress" | "not_provided"
    message: str

    IN_PROGRESS = "提供機関で手作業による確認を行っています。回答までしばらくお待ちください。"
    ANSWERED = "情報が提供されました。"
    NOT_PROVIDED = "提供機関の判断により、情報は提供されませんでした。"

    @classmethod
    def of(cls, request_id: str, status: str | None, *, released: bool = True) -> QuerierAnswer:
        """The one mapping from a provision request's status to what the querier learns (the request path,
        the counter and the portal all read it here): held and in review look like any manual answer, and
        so does a staff-made decision until the provider's batch time releases it (``released``): whatever
        the reason a request needed staff, the querier sees the same answer, and its end at the same times."""
        if not released:
            return cls(request_id, "in_progress", cls.IN_PROGRESS)
        if is_answered(status):
            return cls(request_id, "answered", cls.ANSWERED)
        if status == ProvisionStatus.REFUSED.value:
            return cls(request_id, "not_provided", cls.NOT_PROVIDED)
        return cls(request_id, "in_progress", cls.IN_PROGRESS)


ANSWERED_STATUSES = (ProvisionStatus.PROVIDED.value, ProvisionStatus.PROVIDED_MANUALLY.value)


def is_answered(status: str | None) -> bool:
    """Whether a provision request with this status gave the querier the information."""
    return status in ANSWERED_STATUSES


def is_local_only(topic: str) -> bool:
    """Whether events of this topic stay on the node (intake notes, approvals, staff, access reads)."""
    from eventsourcing.utils import resolve_topic

    cls_name = topic.split(":", 1)[1].split(".", 1)[0] if ":" in topic else ""
    owner = resolve_topic(topic.split(":", 1)[0] + ":" + cls_name)
    return not getattr(owner, "SHARED", False)
