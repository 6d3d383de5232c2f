"""The year's derived rows (issue 21, docs/year.md "The year's rows"): which aggregates a year read can still
concern — open terms, emergency flags awaiting co-approval, set requests still waiting, open cases, named risks
not used yet, last-holder warnings, every recorded move, guardian bars not lifted, and the protection bodies'
requests and their outcomes (docs/bodies.md) — by kind and agency, in log order.

A row is a *candidate*, never an answer: the app loads each aggregate a row names from the verified log and
applies the same test a full scan applies (:class:`YearRows`, read through ``FlagLedger.year_rows``). So the
rows only have to be a superset of what the scan would find: a row kept after its aggregate left the set (a
status the projection does not follow) costs one load, never a wrong item.

Threats:

* **the perpetrator**: a pending request, open term or move the projection missed would drop an item from a
  queue — a handover never asked for, a term's overdue escalation never recorded — and leave someone
  unprotected. The guard is equality with the scan: ``tests/integration/test_year_rows.py`` compares every
  agency's queue, prompts, risks, cases and the clock's step read through these rows with a full scan of the
  log after every step of a generated history, on SQLite and PostgreSQL, and a rebuild with the live rows.
* **an insider editing the views database**: deleting a row hides an item from a listing (it cannot lift a
  flag or pass a guard: the release guards — the handover, the last holder, a named risk's use — and the
  residence rule for number links read the verified log, never these rows); ``audit views`` names the changed
  row against a rebuild. An added or edited row names an aggregate the app loads, verifies and tests itself.

Nothing here is sealed: the rows hold ids, agency codes, keyed pseudonyms and a move's date and destination —
lookup columns, as the flag holders' (docs/erasure.md "Views at rest, not sealed yet") — and no free text (no
explanation, note, risk or reason). An agency's erasure notice drops the rows of its *local* items about the
person (terms, cases, risks, requests); moves and warnings are shared events, kept as the other views keep them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Engine, Index, Integer, String, Table, select

from ledger.domain import bounds
from ledger.log.envelope import Envelope
from projections.base import BatchedProjection, PageWriter, Projector, metadata

__all__ = ["KINDS", "LOCAL_KINDS", "YearRows", "YearRowsProjection", "year_rows"]

MOVE, WARNING, RISK, TERM, PROVISIONAL, WAITING_SET, CASE = (
    "move",
    "warning",
    "risk",
    "term",
    "provisional",
    "waiting_set",
    "case",
)
BAR, BODY_REQUEST, BODY_OUTCOME = "bar", "body_request", "body_outcome"
KINDS = frozenset({MOVE, WARNING, RISK, TERM, PROVISIONAL, WAITING_SET, CASE, BAR, BODY_REQUEST, BODY_OUTCOME})
# the erasing agency's own local items about the person (an erasure notice drops them); the others are shared
LOCAL_KINDS = (RISK, TERM, PROVISIONAL, WAITING_SET, CASE)

FLAG_REQUEST = "ledger.domain.flags:FlagRequest."
MOVE_RECORDED = "ledger.domain.moves:ResidenceChange.Recorded"
WARNING_RAISED = "ledger.domain.moves:LastHolderWarning.Raised"
RISK_EVENT = "ledger.domain.moves:ReleaseDecision."
TERM_EVENT = "ledger.domain.terms:SupportTerm."
CASE_EVENT = "ledger.domain.cases:ProtectionCase."
BAR_EVENT = "ledger.domain.guardians:GuardianBar."
BODY_SENT = "ledger.domain.flags:BodyRequest.Sent"
OUTCOME_RECORDED = "ledger.domain.bodies:BodyOutcome.Recorded"
ERASED = "ledger.domain.erasure:ErasureNotice.Published"

year_rows = Table(
    "year_rows",
    metadata,
    Column("kind", String(12), primary_key=True),
    Column("item_id", String(36), primary_key=True),
    Column("agency", String(bounds.AGENCY_CODE.max), nullable=False),  # the aggregate's owner
    Column("subject", String(bounds.SUBJECT.max), nullable=False),  # a case: its victim; a body outcome: ""
    Column("to_agency", String(bounds.AGENCY_CODE.max)),  # a move's destination, a body request's municipality
    Column("ref", String(36)),  # a body outcome's body request
    Column("moved_on", String(bounds.DATE.max)),  # a move's date
    Column("position", Integer, nullable=False),  # the creation event's: the scan's order
    Index("ix_year_rows_kind_agency", "kind", "agency", "position"),
    Index("ix_year_rows_to_agency", "to_agency"),
    Index("ix_year_rows_subject", "subject"),
    Index("ix_year_rows_ref", "ref"),
)


# the events that take an item out of its listing
_ENDS = {RISK_EVENT + "Used": RISK, TERM_EVENT + "Lapsed": TERM, CASE_EVENT + "Closed": CASE, BAR_EVENT + "Lifted": BAR}


class YearRowsProjection(BatchedProjection):
    name = "year_rows"
    tables = (year_rows,)
    topics = frozenset(
        {FLAG_REQUEST + e for e in ("Requested", "Rejected", "Executed", "CoApproved")}
        | {MOVE_RECORDED, WARNING_RAISED, ERASED}
        | {RISK_EVENT + e for e in ("Proposed", "Used")}
        | {TERM_EVENT + e for e in ("Applied", "Lapsed")}
        | {CASE_EVENT + e for e in ("Opened", "Closed")}
        | {BAR_EVENT + e for e in ("Proposed", "Lifted")}
        | {BODY_SENT, OUTCOME_RECORDED}
    )
    build_indexes = frozenset({"ix_year_rows_subject"})  # an erasure notice deletes a person's rows (_drop)

    def apply(self, w: PageWriter, event: Any, env: Envelope, position: int) -> None:
        h = env.header
        topic, item = h.topic, h.stream

        def add(kind: str, agency: str, subject: str, **more: Any) -> None:
            row = {"kind": kind, "item_id": item, "agency": agency, "subject": subject, "position": position}
            w.upsert(year_rows, {**row, "to_agency": None, "moved_on": None, "ref": None, **more})

        def drop(kind: str) -> None:
            w.delete(year_rows, {"kind": kind, "item_id": item})

        if topic.startswith(FLAG_REQUEST):
            step = topic.rsplit(".", 1)[1]
            if step == "Requested":
                if getattr(event, "provisional", False):
                    add(PROVISIONAL, event.agency, event.subject)
                if event.kind == "set":
                    add(WAITING_SET, event.agency, event.subject)
            elif step == "CoApproved":
                drop(PROVISIONAL)
            else:  # rejected or executed: no longer waiting
                drop(WAITING_SET)
        elif topic == MOVE_RECORDED:
            add(MOVE, event.agency, event.subject, to_agency=event.to_agency, moved_on=event.moved_on)
        elif topic == WARNING_RAISED:
            add(WARNING, event.agency, event.subject)
        elif topic == RISK_EVENT + "Proposed":
            add(RISK, event.agency, event.subject)
        elif topic == TERM_EVENT + "Applied":
            add(TERM, event.agency, event.subject)
        elif topic == CASE_EVENT + "Opened":
            add(CASE, event.agency, event.victim)
        elif topic == BAR_EVENT + "Proposed":
            add(BAR, event.agency, event.subject)
        elif topic == BODY_SENT:
            add(BODY_REQUEST, event.agency, event.subject, to_agency=event.municipality)
        elif topic == OUTCOME_RECORDED:
            add(BODY_OUTCOME, event.agency, "", ref=str(event.body_request_id))
        elif topic == ERASED:
            self._drop(w, str(event.subject), h.origin)
        else:  # a risk used, a term lapsed, a case closed, a bar lifted
            drop(_ENDS[topic])

    @staticmethod
    def _drop(w: PageWriter, subject: str, agency: str) -> None:
        c = year_rows.c
        w.conn.execute(
            year_rows.delete().where((c.subject == subject) & (c.agency == agency) & c.kind.in_(LOCAL_KINDS))
        )


class YearRows:
    """The candidates of a year read (``ledger.app.values.YearRowsReader``), caught up to the log first."""

    def __init__(self, projector: Projector, engine: Engine) -> None:
        self.projector = projector
        self.engine = engine

    def items(self, kind: str, agency: str | None = None, *, to_agency: str | None = None) -> list[UUID]:
        """The ids of ``kind``'s rows (of ``agency``'s aggregates, or every agency's; sent to ``to_agency``), in
        log order."""
        c = year_rows.c
        q = select(c.item_id).where(c.kind == kind)
        if agency is not None:
            q = q.where(c.agency == agency)
        if to_agency is not None:
            q = q.where(c.to_agency == to_agency)
        return _ids(str(r[0]) for r in self._rows(q.order_by(c.position, c.item_id)))

    def latest_moves_to(self, agency: str) -> list[UUID]:
        """The moves to ``agency`` that are their person's latest (by date, then log order, as the scan picks)."""
        c = year_rows.c
        subjects = select(c.subject).where((c.kind == MOVE) & (c.to_agency == agency))
        rows = self._rows(
            select(c.item_id, c.subject, c.to_agency)
            .where((c.kind == MOVE) & c.subject.in_(subjects))
            .order_by(c.subject, c.moved_on, c.position)
        )
        latest: dict[str, tuple[str, str]] = {}
        for item, subject, to in rows:  # ordered: the last of each subject is its latest
            latest[str(subject)] = (str(item), str(to))
        return _ids(item for item, to in latest.values() if to == agency)

    def about(self, kind: str, refs: Iterable[str]) -> list[UUID]:
        """The ids of ``kind``'s rows about any of ``refs`` (a body request's outcomes), in log order."""
        c = year_rows.c
        wanted = sorted(set(refs))
        if not wanted:
            return []
        q = select(c.item_id).where((c.kind == kind) & c.ref.in_(wanted)).order_by(c.position, c.item_id)
        return _ids(str(r[0]) for r in self._rows(q))

    def _rows(self, q: Any) -> list[Any]:
        self.projector.catch_up()
        with self.engine.connect() as conn:
            return list(conn.execute(q))


def _ids(values: Iterable[str]) -> list[UUID]:
    out: list[UUID] = []
    for v in values:
        try:
            out.append(UUID(v))
        except ValueError:  # an edited row: names nothing
            continue
    return out
