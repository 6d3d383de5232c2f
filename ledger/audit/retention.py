"""Retention (issue #22): how long each kind of record is kept, and which are due for erasure on a given day.

Four kinds, each with a period and the event its clock starts from (docs/retention.md gives the sources):

* ``provision`` — provision records (情報提供等記録), from the request's receipt
* ``access`` — records of reads of protected details (``AccessRecord``), from the read
* ``cases`` — protection cases opened on consultation, from their closing (an open case is never due)
* ``flags`` — an agency's protection of a person, from the release of its last flag (a held flag is never due)

A flag must outlive every provision record it hides (a record made under NON_DISCLOSURE stays hidden after the
release, docs/domain.md): erasing the flag first would un-hide the record. So the flags' period may not be
shorter than the provision records' — :class:`RetentionPolicy` refuses it.

What is due is read from the views (the timeline and the agencies' flags, rebuilt from the verified log) and
named by pseudonym only, never by number or note. Nothing is erased here: erasure (crypto-shredding of a
person's data keys, four eyes) is not built yet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import ClassVar

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import Actor
from ledger.domain.types import Action
from ledger.errors import StorageError
from ledger.settings import Section, section_config
from projections.flag_state import agency_flags
from projections.node import NodeParts
from projections.timeline import timeline_events

__all__ = ["KINDS", "DueKind", "RetentionPolicy", "retention_due"]

KINDS = ("provision", "access", "cases", "flags")
# the timeline event whose time starts a kind's clock (flags are read from the agencies' flag table)
_TRIGGER = {
    "provision": "ProvisionRequest.Received",
    "access": "AccessRecord.ProtectedDetailsRead",
    "cases": "ProtectionCase.Closed",
}
_CASE_STREAM = "ProtectionCase.Opened"  # a case's subjects (victim, perpetrators) are named on its opening


class RetentionPolicy(Section):
    """config.json's ``retention`` section: whole years per kind (``FLAGLEDGER_RETENTION_<KIND>_YEARS``)."""

    model_config = section_config("FLAGLEDGER_RETENTION_")
    section: ClassVar[str] = "retention"

    provision_years: int = Field(7, ge=1, le=100)
    access_years: int = Field(7, ge=1, le=100)
    cases_years: int = Field(5, ge=1, le=100)
    flags_years: int = Field(7, ge=1, le=100)

    @model_validator(mode="after")
    def _flags_outlive_what_they_hide(self) -> RetentionPolicy:
        if self.flags_years < self.provision_years:
            raise ValueError(
                "retention.flags_years must be at least retention.provision_years: a flag erased before the records "
                "it hides would un-hide them"
            )
        return self

    def years(self, kind: str) -> int:
        years: int = getattr(self, f"{kind}_years")
        return years


@dataclass(frozen=True)
class DueKind:
    kind: str
    years: int
    starts: str  # what starts the clock, for the report
    count: int  # records (requests, reads, cases, protections) due
    subjects: tuple[str, ...]  # their subjects' pseudonyms, sorted


_STARTS = {
    "provision": "the request's receipt",
    "access": "the read",
    "cases": "the case's closing",
    "flags": "the release of the agency's last flag on the person",
}


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none: the day after 28 February
        return date(day.year + years, 3, 1)


def _day(value: str) -> date:
    return datetime.fromisoformat(value).astimezone(UTC).date()


def _load_policy(node: NodeParts) -> RetentionPolicy:
    raw = getattr(node.config, "retention", None)
    return RetentionPolicy.load(raw if isinstance(raw, dict) else {})


def retention_due(node: NodeParts, actor: Actor, as_of: date, policy: RetentionPolicy | None = None) -> list[DueKind]:
    """Per kind, what is due for erasure on ``as_of``: its period ended on or before that day."""
    node.app.permit(actor, Action.AUDIT)
    policy = policy if policy is not None else _load_policy(node)
    agency = actor.agency
    due: dict[str, dict[str, set[str]]] = {kind: defaultdict(set) for kind in KINDS}  # kind → record → subjects
    try:
        with node.engine.connect() as conn:
            events = conn.execute(
                select(
                    timeline_events.c.stream, timeline_events.c.subject, timeline_events.c.event, timeline_events.c.at
                )
                .where(timeline_events.c.agency == agency)
                .where(timeline_events.c.event.in_([*_TRIGGER.values(), _CASE_STREAM]))
            ).all()
            flags = conn.execute(
                select(agency_flags.c.subject, agency_flags.c.active, agency_flags.c.released_at).where(
                    agency_flags.c.agency == agency
                )
            ).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the views for retention: {type(exc).__name__}") from exc
    case_subjects: dict[str, set[str]] = defaultdict(set)
    for stream, subject, event, _at in events:
        if event == _CASE_STREAM:
            case_subjects[stream].add(subject)
    for kind, trigger in _TRIGGER.items():
        for stream, subject, event, at in events:
            if event == trigger and _add_years(_day(at), policy.years(kind)) <= as_of:
                due[kind][stream].add(subject)
                if kind == "cases":
                    due[kind][stream] |= case_subjects[stream]
    held: dict[str, list[tuple[bool, str | None]]] = defaultdict(list)
    for subject, active, released_at in flags:
        held[subject].append((bool(active), released_at))
    for subject, rows in held.items():
        if any(active for active, _ in rows) or any(not released for _, released in rows):
            continue
        last = max(_day(released) for _, released in rows if released)
        if _add_years(last, policy.years("flags")) <= as_of:
            due["flags"][subject].add(subject)
    return [
        DueKind(
            kind,
            policy.years(kind),
            _STARTS[kind],
            len(due[kind]),
            tuple(sorted({s for subjects in due[kind].values() for s in subjects})),
        )
        for kind in KINDS
    ]
