"""The agency itself: its work queues (its own flags: :mod:`projections.views_flags`, importable from here as
well)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from ledger.app import Actor
from ledger.app.answers import held_file
from ledger.app.incidents import READ_ACTIONS
from ledger.domain.types import Action, calendar_day
from ledger.errors import PermissionDenied
from ledger.log.view_cipher import ViewCipher
from projections.flag_state import agency_flags
from projections.incidents import incidents as incident_table
from projections.node import NodeParts
from projections.queue_linkage import CaseEntry, ConsultationEntry, EscalationEntry
from projections.queues import (
    HELD_APPLICANT,
    HELD_INFO_KIND,
    HELD_PROCEDURE,
    HELD_QUERIER,
    PROBE_PROCEDURE,
    PROBE_PROVIDER,
    PROBE_QUERIER,
    body_queue,
    flag_queue,
    held_queue,
    probe_queue,
    request_subjects,
)
from projections.view_reads import fresh, staff_at, view_cipher

# re-exported: projections.views takes the agency's own flags from here
from projections.views_flags import AgencyFlag as AgencyFlag
from projections.views_flags import FlagEvent as FlagEvent
from projections.views_flags import agency_flag_state as agency_flag_state


# -- the agency's queues ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingApproval:
    request_id: str
    kind: str
    subject: str
    flags: tuple[str, ...]
    requested_by: str
    requested_at: str
    approvals: tuple[str, ...]
    approvals_required: int
    status: str  # "pending" (needs approvals) | "approved" (waits for the operator)


@dataclass(frozen=True)
class HeldRequest:
    request_id: str
    querier: str
    subject: str
    legal_item: int
    procedure: str
    info_kind: str
    received_at: str
    applicant: str  # protected_person | known_perpetrator | unknown (confirmed check if any, else as stated)
    proposal: str | None
    proposed_by: str | None
    proposal_version: int | None = None  # name it when approving: a proposal replaced since is refused
    # the provider's own file on it (docs/answers.md): why it needs staff, when it is due, who was told it is late
    reason: str | None = None  # flag | policy | no_data | check (None: held before issue 21)
    due: str | None = None
    overdue: bool = False
    escalated_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewDue:
    subject: str
    flag: str
    review_date: str
    days_left: int
    request_id: str


@dataclass(frozen=True)
class ProtectionBodyRequest:
    body_request_id: str
    body: str
    subject: str
    flags: tuple[str, ...]
    reason: str
    sent_at: str
    decided: bool
    outcome: str | None  # status of the flag request made on it: pending/approved/rejected/executed


@dataclass(frozen=True)
class ProbeNoticeEntry:
    """Someone asked about a person this agency protects (held or answered, on any node)."""

    request_id: str
    subject: str
    querier: str  # the requesting agency
    provider: str
    legal_item: int
    procedure: str
    at: str


@dataclass(frozen=True)
class IncidentEntry:
    """An open security incident raised for this agency (ledger/app/incidents.py): a parked message that forged a
    signature, forked a stream, wrote another agency's stream or used a revoked key. ``origin`` is the agency
    the message claims; ``subjects`` the persons (pseudonyms) of the targeted record."""

    incident_id: str
    kind: str  # forged_signature | fork | foreign_writer | revoked_key_late
    code: str
    origin: str
    stream: str
    version: int
    topic: str
    subjects: tuple[str, ...]
    parked_id: int
    origin_held: bool
    raised_at: str


@dataclass(frozen=True)
class WorkQueue:
    agency: str
    approvals: tuple[PendingApproval, ...]
    held: tuple[HeldRequest, ...]
    reviews_due: tuple[ReviewDue, ...]
    body_requests: tuple[ProtectionBodyRequest, ...]
    probes: tuple[ProbeNoticeEntry, ...] = ()
    held_waiting: int = 0  # held requests waiting, counted for deciders even when not listed
    incidents: tuple[IncidentEntry, ...] = ()
    incidents_open: int = 0  # open incidents, counted for their readers even when not listed
    # an agency in linkage hub mode (consumers.linkage_queue): the hub's consultations of this holder, what the
    # hub said of the routed requests held here, and escalations for administrators — none names a holder
    consultations: tuple[ConsultationEntry, ...] = ()
    consultations_waiting: int = 0  # consultations no advice was given on yet, counted for deciders
    cases: tuple[CaseEntry, ...] = ()
    escalations: tuple[EscalationEntry, ...] = ()
    # the year's queue (ledger.app.year.YearCommands.year_queue: handovers, last-holder warnings, terms, emergency
    # flags, prompts) for staff with a part in protection decisions; None for others and on a counting page
    year: dict[str, Any] | None = None


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(",") if v)


def pending_approvals(conn: Connection, agency: str) -> list[PendingApproval]:
    rows = conn.execute(
        select(flag_queue)
        .where((flag_queue.c.agency == agency) & flag_queue.c.status.in_(("pending", "approved")))
        .order_by(flag_queue.c.requested_at, flag_queue.c.request_id)
    ).all()
    return [
        PendingApproval(
            r.request_id,
            r.kind,
            r.subject,
            _split(r.flags),
            r.requested_by,
            r.requested_at,
            _split(r.approvals),
            r.approvals_required,
            r.status,
        )
        for r in rows
    ]


def held_requests(conn: Connection, cipher: ViewCipher, agency: str) -> list[HeldRequest]:
    """``agency``'s held requests, their sealed cells opened; one whose person was erased is left out."""
    rows = conn.execute(
        select(held_queue)
        .where((held_queue.c.provider == agency) & (held_queue.c.status == "held"))
        .order_by(held_queue.c.received_at, held_queue.c.request_id)
    ).all()
    out = []
    for r in rows:
        querier, procedure = cipher.open(HELD_QUERIER, r.querier), cipher.open(HELD_PROCEDURE, r.procedure)
        info_kind, applicant = cipher.open(HELD_INFO_KIND, r.info_kind), cipher.open(HELD_APPLICANT, r.applicant)
        if querier is None or procedure is None or info_kind is None or applicant is None:
            continue
        out.append(
            HeldRequest(
                r.request_id,
                querier,
                r.subject,
                r.legal_item,
                procedure,
                info_kind,
                r.received_at,
                r.applicant_check or applicant,
                r.proposal,
                r.proposed_by,
                r.proposal_version,
            )
        )
    return out


def _with_files(node: NodeParts, held: list[HeldRequest], today: date) -> list[HeldRequest]:
    """Each held request with the provider's file on it, read from the log (the reason is never in a view)."""
    out = []
    for h in held:
        f = held_file(node.app, UUID(h.request_id))
        if f is None:
            out.append(h)
            continue
        late = f.escalation_due(today) > 0
        steps = ("approver", "administrator")[: f.level]
        out.append(replace(h, reason=f.reason, due=f.due, overdue=late, escalated_to=steps))
    return out


def reviews_due(conn: Connection, agency: str, today: date, within_days: int = 30) -> list[ReviewDue]:
    limit = (today + timedelta(days=within_days)).isoformat()
    rows = conn.execute(
        select(agency_flags)
        .where(
            (agency_flags.c.agency == agency)
            & agency_flags.c.active.is_(True)
            & agency_flags.c.review_date.is_not(None)
            & (agency_flags.c.review_date <= limit)
        )
        .order_by(agency_flags.c.review_date, agency_flags.c.subject, agency_flags.c.flag)
    ).all()
    return [
        ReviewDue(r.subject, r.flag, r.review_date, (date.fromisoformat(r.review_date) - today).days, r.request_id)
        for r in rows
    ]


def body_requests(conn: Connection, agency: str) -> list[ProtectionBodyRequest]:
    rows = conn.execute(
        select(body_queue)
        .where(body_queue.c.municipality == agency)
        .order_by(body_queue.c.sent_at, body_queue.c.body_request_id)
    ).all()
    out = []
    for r in rows:
        statuses = (
            conn.execute(
                select(flag_queue.c.status)
                .where(flag_queue.c.body_request_id == r.body_request_id)
                .order_by(flag_queue.c.requested_at)
            )
            .scalars()
            .all()
        )
        outcome = str(statuses[-1]) if statuses else None
        out.append(
            ProtectionBodyRequest(
                r.body_request_id,
                r.body,
                r.subject,
                _split(r.flags),
                r.reason,
                r.sent_at,
                outcome in ("rejected", "executed"),
                outcome,
            )
        )
    return out


def probe_notices(conn: Connection, cipher: ViewCipher, agency: str) -> list[ProbeNoticeEntry]:
    """The probe notices ``agency`` holds; one whose person was erased (its key destroyed) is left out."""
    subject = func.coalesce(request_subjects.c.subject, "")  # "" while the request itself has not arrived
    rows = conn.execute(
        select(probe_queue, subject.label("subject"))
        .select_from(probe_queue.outerjoin(request_subjects, request_subjects.c.request_id == probe_queue.c.request_id))
        .where(probe_queue.c.holder == agency)
        .order_by(probe_queue.c.sent_at, probe_queue.c.request_id)
    ).all()
    out = []
    for r in rows:
        querier, provider = cipher.open(PROBE_QUERIER, r.querier), cipher.open(PROBE_PROVIDER, r.provider)
        procedure = cipher.open(PROBE_PROCEDURE, r.procedure)
        if querier is None or provider is None or procedure is None:
            continue
        out.append(ProbeNoticeEntry(r.request_id, r.subject, querier, provider, r.legal_item, procedure, r.sent_at))
    return out


def open_incidents(conn: Connection, agency: str) -> list[IncidentEntry]:
    t = incident_table
    rows = conn.execute(
        select(t).where((t.c.agency == agency) & (t.c.status == "open")).order_by(t.c.raised_at, t.c.incident_id)
    ).all()
    return [
        IncidentEntry(
            r.incident_id,
            r.kind,
            r.code,
            r.origin,
            r.stream,
            r.version,
            r.topic,
            _split(r.subjects),
            r.parked_id,
            bool(r.origin_held),
            r.raised_at,
        )
        for r in rows
    ]


def _may(node: NodeParts, actor: Actor, *actions: Action) -> bool:
    for action in actions:
        try:
            node.app.permit(actor, action)
            return True
        except PermissionDenied:
            pass
    return False


def _year(node: NodeParts, actor: Actor) -> dict[str, Any] | None:
    try:
        return node.app.year_queue(actor)
    except PermissionDenied:  # no part in protection decisions (a counter clerk, an auditor)
        return None


HELD_LISTING = "held-request queue"
HELD_LISTING_PURPOSE = "review of held requests"
INCIDENT_LISTING = "incident queue"
INCIDENT_LISTING_PURPOSE = "security incidents raised for this agency"


def work_queue(node: NodeParts, actor: Actor, today: date | None = None, *, held: bool = True) -> WorkQueue:
    """Everything waiting for staff of ``actor.agency``.

    Held requests and probe notices name the querying agency (the reviewer calls it back, Point 5), which
    may be where a protected person now lives: they are listed only for staff who decide held requests
    (review_held, approve_held), never for, say, the counter clerk a perpetrator talks to. Listing them is a
    read of protected details, so it is recorded first (one ``AccessRecord`` per person shown); with
    ``held=False`` (a page that only counts them) they are counted, not listed, and nothing is recorded.

    Open security incidents (a forged signature, a fork, a foreign writer, a revoked key's late use aimed at
    this agency's records) are listed, the same way, for staff who act on them (``ledger.app.incidents``:
    deciders of held requests, administrators, auditors), and the listing is recorded like the held queue's.
    """
    staff_at(node, actor)
    fresh(node)
    day = calendar_day(today, "today") if today is not None else node.app.clock().date()
    deciders = _may(node, actor, Action.REVIEW_HELD, Action.APPROVE_HELD)
    responders = _may(node, actor, *READ_ACTIONS)
    with node.engine.connect() as conn:
        a = actor.agency
        waiting = tuple(_with_files(node, held_requests(conn, view_cipher(node), a), day)) if deciders else ()
        probes = tuple(probe_notices(conn, view_cipher(node), a)) if deciders and held else ()
        alerts = tuple(open_incidents(conn, a)) if responders else ()
        queue = WorkQueue(
            a,
            tuple(pending_approvals(conn, a)),
            waiting if held else (),
            tuple(reviews_due(conn, a, day)),
            tuple(body_requests(conn, a)),
            probes,
            held_waiting=len(waiting),
            incidents=alerts if held else (),
            incidents_open=len(alerts),
            year=_year(node, actor) if held else None,
        )
    shown = [h.subject for h in queue.held] + [p.subject for p in queue.probes if p.subject]
    if shown:
        node.app.record_listing(
            actor, shown, HELD_LISTING, HELD_LISTING_PURPOSE, (Action.REVIEW_HELD, Action.APPROVE_HELD)
        )
    named = [s for i in queue.incidents for s in i.subjects]
    if named:
        node.app.record_listing(actor, named, INCIDENT_LISTING, INCIDENT_LISTING_PURPOSE, READ_ACTIONS)
    return queue
