"""Query functions over the projections, with the role filtering each audience needs.

Audiences and what they may learn:

* **Mynaportal** (:func:`portal_records`, :func:`self_information`): whoever logs in with the subject's
  credentials (the subject, or anyone holding the subject's card: the system cannot tell them apart) or a
  *registered, active* proxy. Everyone gets the same filtered view; anyone else gets nothing.
  A record is hidden when it was created before the end of any ``NON_DISCLOSURE`` interval that any agency
  held on any pseudonym of the person (an open interval ends never). That hides every record while the
  flag applies, and keeps hidden, after release, every record that was hidden (those created while the
  flag applied and those before it); records created after the last release are shown. Self-information
  (what agencies hold about the person, modelled as the items they have provided about the person) is not
  shown at all while ``NO_AUTO_RESPONSE`` applies nationwide.
* **Staff** (:func:`nationwide_view`, :func:`counter_view`): staff of any agency see *that* a person is
  protected, which flags, and opaque liaison references; only staff of a holding agency, or staff allowed
  to ``view_protected`` who state a purpose (the read is recorded first), see which agencies hold them.
* **The agency itself** (:func:`agency_flag_state`, :func:`work_queue`).
* **Auditors** (:func:`subject_timeline`): everything about the person, recorded as a read.

Every function taking a ``Node`` first applies events not yet projected, so reads follow writes. Whatever
decides what an audience may see (who is protected, the portal's access and cutoff, what a shown record says)
comes from the verified log (:mod:`projections.verified`), not from rows of the views database; listings (work
queues, an agency's own flags, timelines) read the views, which ``flagledger audit views`` checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.app import Actor, QuerierAnswer
from ledger.app.incidents import READ_ACTIONS
from ledger.app.values import is_answered
from ledger.domain.types import Action, Flag, calendar_day
from ledger.errors import InputError, NotFoundError, PermissionDenied
from projections.flag_state import agency_flags, flag_history, resolve_person, subject_alias
from projections.incidents import incidents as incident_table
from projections.node import NodeParts
from projections.portal import portal_records as records
from projections.portal_read import PortalReader
from projections.queues import body_queue, flag_queue, held_queue, probe_queue, request_subjects
from projections.timeline import timeline_events
from projections.verified import RecordCheck

__all__ = [
    "AgencyFlag",
    "CounterAnswer",
    "CounterView",
    "HeldRequest",
    "Holding",
    "IncidentEntry",
    "NationwideView",
    "PendingApproval",
    "PortalRecord",
    "PortalView",
    "ProbeNoticeEntry",
    "ProtectionBodyRequest",
    "ReviewDue",
    "SelfInfoView",
    "TimelineEntry",
    "WorkQueue",
    "agency_flag_state",
    "aliases",
    "counter_view",
    "liaison_ref",
    "nationwide_view",
    "portal_records",
    "resolve_liaison",
    "self_information",
    "subject_timeline",
    "work_queue",
]

ND = Flag.NON_DISCLOSURE.value
NAR = Flag.NO_AUTO_RESPONSE.value


# -- people ---------------------------------------------------------------------------------------------
def aliases(conn: Connection, subject: str) -> list[str]:
    """Every pseudonym of the person ``subject`` names (number changes join them)."""
    person = resolve_person(conn, subject)
    others = conn.execute(select(subject_alias.c.pseudonym).where(subject_alias.c.person == person)).scalars()
    return sorted({subject, person, *(str(o) for o in others)})


def _fresh(node: NodeParts) -> None:
    node.projector.catch_up()


def _staff_at(node: NodeParts, actor: Actor) -> None:
    """Any active staff member of an agency hosted here (Point 3: every department sees the protection)."""
    node.app.permit(actor)


# -- Mynaportal -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortalRecord:
    request_id: str
    created_at: str
    querier: str
    provider: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str  # "provided" | "in_progress" | "not_provided": a held request looks like any manual one


@dataclass(frozen=True)
class PortalView:
    access: str  # "self" (the subject's credentials or card) | "proxy" | "none"
    records: tuple[PortalRecord, ...]


def _outcome(status: str) -> str:
    """The querier's answer (QuerierAnswer.of) in the portal's words: "answered" is "provided" there."""
    answer = QuerierAnswer.of("", status).status
    return "provided" if answer == "answered" else answer


def portal_records(node: NodeParts, viewer: str, subject: str) -> PortalView:
    """The provision-record display (情報提供等記録表示) of ``subject`` for whoever logged in as ``viewer``.

    ``viewer`` is the pseudonym (or number) whose credentials were used: ``viewer == subject`` is the
    subject or anyone with the subject's card; otherwise only an active proxy registration gives access.
    Who may look and what is hidden are decided from the verified log (:mod:`projections.portal_read`).
    """
    reader = _portal_reader(node)
    reader.fresh()
    access, rows = reader.view(node.app.subject(viewer), node.app.subject(subject))
    return PortalView(access, tuple(PortalRecord(rid, at, querier, provider, procedure, int(item), kind,
                                                 _outcome(status))
                                    for rid, at, querier, provider, procedure, item, kind, status in rows))


def _record_check(node: NodeParts) -> RecordCheck:
    check = node.extra.get("record_check")
    if not isinstance(check, RecordCheck):
        check = node.extra["record_check"] = RecordCheck(node.app)
    return check


def _portal_reader(node: NodeParts) -> PortalReader:
    reader = node.extra.get("portal_reader")
    if not isinstance(reader, PortalReader):
        reader = PortalReader(node.engine, [p.name for p in node.projector.projections], node.app.max_position,
                              node.projector.catch_up, node.state, _record_check(node).facts)
        node.extra["portal_reader"] = reader
    return reader


@dataclass(frozen=True)
class Holding:
    agency: str
    info_kind: str
    since: str


@dataclass(frozen=True)
class SelfInfoView:
    access: str
    withheld: bool  # NO_AUTO_RESPONSE applies: nothing is displayed automatically
    holdings: tuple[Holding, ...]

    MESSAGE = "この情報は自動では表示されません。お住まいの市区町村の窓口にお問い合わせください。"


def self_information(node: NodeParts, viewer: str, subject: str) -> SelfInfoView:
    """Self-information display (自己情報表示): which agency holds which kind of information on the subject.

    Modelled from the provision records: an agency that provided ``info_kind`` about the subject holds a
    registered copy (副本) of it. Withheld entirely while ``NO_AUTO_RESPONSE`` applies nationwide. Access,
    withholding and the sticky cutoff are decided from the verified log, each record from its signed event.
    """
    reader = _portal_reader(node)
    reader.fresh()
    access, person = node.state.portal_access(node.app.subject(viewer), node.app.subject(subject))
    if access == "none":
        return SelfInfoView("none", False, ())
    if person.nar:
        return SelfInfoView(access, True, ())
    # sticky, as the provision records: nothing learnt from records made before the last release
    first: dict[tuple[str, str], str] = {}
    for facts, status in reader.records(person, person.cutoff or ""):
        if is_answered(status):
            key = (facts.provider, facts.info_kind)
            first[key] = min(first.get(key, facts.created_at), facts.created_at)
    return SelfInfoView(access, False, tuple(Holding(a, k, t) for (a, k), t in sorted(first.items())))


# -- staff: nationwide state and the counter -----------------------------------------------------------------
def liaison_ref(secret: bytes, agency: str, subject: str) -> str:
    """An opaque handle on one holding (agency, pseudonym): any node of the deployment derives the same one,
    only the holding agency can resolve it, and nobody can test agency codes against it without the secret."""
    mac = hmac.new(secret, f"liaison\x00{agency}\x00{subject}".encode(), hashlib.sha256).hexdigest()
    return "L-" + mac[:20]


@dataclass(frozen=True)
class NationwideView:
    subject: str
    protected: bool
    flags: tuple[str, ...]
    liaison: tuple[str, ...]  # contact the protecting side through these; never an agency code
    holders: tuple[str, ...] | None  # None: not for this viewer
    basis: str  # "other_agency" | "holding_agency" | "authorised"


def nationwide_view(node: NodeParts, actor: Actor, subject: str, *, purpose: str | None = None) -> NationwideView:
    """Is this person protected anywhere, as staff member ``actor`` may see it.

    With ``purpose``, a staff member allowed to ``view_protected`` sees the holding agencies; the read is
    recorded (an AccessRecord event) before anything is returned.
    """
    _staff_at(node, actor)
    s = node.app.subject(subject)
    held = node.state.person(s).holdings  # from the verified log: a deleted view row unprotects nobody
    secret = node.config.pseudonym_secret()
    flags = tuple(sorted({f for _, _, f in held}))
    liaison = tuple(sorted({liaison_ref(secret, a, p) for a, p, _ in held}))
    holders = tuple(sorted({a for a, _, _ in held}))
    if actor.agency in holders and purpose is None:
        # its own holding only: another holder may be where the victim lives now, and this may be the
        # counter of the municipality she fled (other holders: a purposeful, recorded read, below)
        return NationwideView(s, bool(held), flags, liaison, (actor.agency,), "holding_agency")
    if purpose is not None:
        if not purpose.strip():
            raise InputError("say why the protecting agencies are read (purpose)")
        # recorded before it is shown; raises PermissionDenied for staff not allowed to view_protected
        node.app.record_access(actor, s, "nationwide holders", purpose)
        return NationwideView(s, bool(held), flags, liaison, holders, "authorised")
    return NationwideView(s, bool(held), flags, liaison, None, "other_agency")


@dataclass(frozen=True)
class LiaisonTarget:
    subject: str
    flags: tuple[str, ...]


def resolve_liaison(node: NodeParts, actor: Actor, token: str, *, purpose: str) -> LiaisonTarget:
    """The holding agency's contact point (Point 5) turns a liaison reference back into its own holding.

    The read is recorded (an ``AccessRecord`` naming ``purpose``) before anything is returned, whoever asks
    (API, console, CLI): a lookup nobody recorded is exactly what a curious insider would want.
    """
    node.app.permit(actor, Action.VIEW_PROTECTED)
    secret = node.config.pseudonym_secret()
    rows = node.state.holdings_of(actor.agency)
    flags = sorted(str(f) for s, f in rows if liaison_ref(secret, actor.agency, str(s)) == token)
    subject = next((str(s) for s, _ in rows if liaison_ref(secret, actor.agency, str(s)) == token), None)
    if subject is None:
        raise NotFoundError("that liaison reference names no protection held by your agency")
    node.app.record_access(actor, subject, "liaison reference", purpose)
    return LiaisonTarget(subject, tuple(flags))


@dataclass(frozen=True)
class CounterAnswer:
    request_id: str
    asked_at: str
    procedure: str
    info_kind: str
    status: str  # as QuerierAnswer: "answered" | "in_progress" | "not_provided"
    message: str
    provider: str | None  # None whenever the subject is protected or nothing was provided


@dataclass(frozen=True)
class CounterView:
    subject: str
    protection: NationwideView
    answers: tuple[CounterAnswer, ...]

    NOTICE = "保護対象者です。本人以外からの問合せには、情報が秘匿されている前提で対応してください。"


def counter_view(node: NodeParts, actor: Actor, subject: str) -> CounterView:
    """What counter staff at ``actor.agency`` can tell someone asking about their queries on ``subject``
    (Point 4: they see the protection first and answer on the premise that the information is secret)."""
    node.app.permit(actor, Action.COUNTER_LOOKUP)
    protection = nationwide_view(node, actor, subject)
    _fresh(node)
    person = node.state.person(protection.subject)
    names = set(person.aliases)
    check = _record_check(node)
    with node.engine.connect() as conn:
        rows = conn.execute(select(records.c.request_id, records.c.position, records.c.status).where(
            (records.c.querier == actor.agency) & records.c.subject.in_(person.aliases))).all()
    answers = []
    for r in rows:
        facts = check.facts(str(r.request_id), int(r.position))
        if facts is None or facts.subject not in names or facts.querier != actor.agency:
            continue  # a row the log does not bear out (edited or moved): not shown
        answer = QuerierAnswer.of(facts.request_id, r.status)
        status, message = answer.status, answer.message
        # sticky, as on the portal: after release, answers from before it still do not name the provider
        sticky = person.cutoff is not None and facts.created_at < person.cutoff
        provider = facts.provider if status == "answered" and not person.protected and not sticky else None
        answers.append(CounterAnswer(facts.request_id, facts.created_at, facts.procedure, facts.info_kind, status,
                                     message, provider))
    answers.sort(key=lambda a: (a.asked_at, a.request_id))
    return CounterView(protection.subject, protection, tuple(answers))


# -- the agency's own state and queues ---------------------------------------------------------------------
@dataclass(frozen=True)
class FlagEvent:
    action: str  # "set" | "renew" | "release"
    at: str
    request_id: str
    review_date: str | None


@dataclass(frozen=True)
class AgencyFlag:
    agency: str
    subject: str
    flag: str
    active: bool
    since: str
    request_id: str
    reason: str
    review_date: str | None
    released_at: str | None
    history: tuple[FlagEvent, ...]


def agency_flag_state(node: NodeParts, actor: Actor, subject: str | None = None) -> list[AgencyFlag]:
    """The flags ``actor.agency`` holds (or held), with their history; optionally for one person only."""
    _staff_at(node, actor)
    _fresh(node)
    with node.engine.connect() as conn:
        stmt = select(agency_flags).where(agency_flags.c.agency == actor.agency)
        if subject is not None:
            stmt = stmt.where(agency_flags.c.subject.in_(aliases(conn, node.app.subject(subject))))
        rows = conn.execute(stmt.order_by(agency_flags.c.subject, agency_flags.c.flag)).all()
        hist = conn.execute(select(flag_history).where(
            (flag_history.c.agency == actor.agency)
            & flag_history.c.subject.in_(sorted({r.subject for r in rows}))
        ).order_by(flag_history.c.position, flag_history.c.seq)).all()
    out = []
    for r in rows:
        events = tuple(FlagEvent(h.action, h.at, h.request_id, h.review_date) for h in hist
                       if h.subject == r.subject and h.flag == r.flag)
        out.append(AgencyFlag(r.agency, r.subject, r.flag, bool(r.active), r.since, r.request_id, r.reason,
                              r.review_date, r.released_at, events))
    return out


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


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(",") if v)


def pending_approvals(conn: Connection, agency: str) -> list[PendingApproval]:
    rows = conn.execute(select(flag_queue).where(
        (flag_queue.c.agency == agency) & flag_queue.c.status.in_(("pending", "approved"))
    ).order_by(flag_queue.c.requested_at, flag_queue.c.request_id)).all()
    return [PendingApproval(r.request_id, r.kind, r.subject, _split(r.flags), r.requested_by, r.requested_at,
                            _split(r.approvals), r.approvals_required, r.status) for r in rows]


def held_requests(conn: Connection, agency: str) -> list[HeldRequest]:
    rows = conn.execute(select(held_queue).where(
        (held_queue.c.provider == agency) & (held_queue.c.status == "held")
    ).order_by(held_queue.c.received_at, held_queue.c.request_id)).all()
    return [HeldRequest(r.request_id, r.querier, r.subject, r.legal_item, r.procedure, r.info_kind,
                        r.received_at, r.applicant_check or r.applicant, r.proposal, r.proposed_by,
                        r.proposal_version)
            for r in rows]


def reviews_due(conn: Connection, agency: str, today: date, within_days: int = 30) -> list[ReviewDue]:
    limit = (today + timedelta(days=within_days)).isoformat()
    rows = conn.execute(select(agency_flags).where(
        (agency_flags.c.agency == agency) & agency_flags.c.active.is_(True)
        & agency_flags.c.review_date.is_not(None) & (agency_flags.c.review_date <= limit)
    ).order_by(agency_flags.c.review_date, agency_flags.c.subject, agency_flags.c.flag)).all()
    return [ReviewDue(r.subject, r.flag, r.review_date, (date.fromisoformat(r.review_date) - today).days,
                      r.request_id) for r in rows]


def body_requests(conn: Connection, agency: str) -> list[ProtectionBodyRequest]:
    rows = conn.execute(select(body_queue).where(body_queue.c.municipality == agency)
                        .order_by(body_queue.c.sent_at, body_queue.c.body_request_id)).all()
    out = []
    for r in rows:
        statuses = conn.execute(select(flag_queue.c.status).where(
            flag_queue.c.body_request_id == r.body_request_id
        ).order_by(flag_queue.c.requested_at)).scalars().all()
        outcome = str(statuses[-1]) if statuses else None
        out.append(ProtectionBodyRequest(r.body_request_id, r.body, r.subject, _split(r.flags), r.reason,
                                         r.sent_at, outcome in ("rejected", "executed"), outcome))
    return out


def probe_notices(conn: Connection, agency: str) -> list[ProbeNoticeEntry]:
    subject = func.coalesce(request_subjects.c.subject, "")  # "" while the request itself has not arrived
    rows = conn.execute(
        select(probe_queue, subject.label("subject"))
        .select_from(probe_queue.outerjoin(request_subjects, request_subjects.c.request_id == probe_queue.c.request_id))
        .where(probe_queue.c.holder == agency)
        .order_by(probe_queue.c.sent_at, probe_queue.c.request_id)
    ).all()
    return [ProbeNoticeEntry(r.request_id, r.subject, r.querier, r.provider, r.legal_item, r.procedure, r.sent_at)
            for r in rows]


def open_incidents(conn: Connection, agency: str) -> list[IncidentEntry]:
    t = incident_table
    rows = conn.execute(select(t).where((t.c.agency == agency) & (t.c.status == "open"))
                        .order_by(t.c.raised_at, t.c.incident_id)).all()
    return [IncidentEntry(r.incident_id, r.kind, r.code, r.origin, r.stream, r.version, r.topic, _split(r.subjects),
                          r.parked_id, bool(r.origin_held), r.raised_at) for r in rows]


def _may(node: NodeParts, actor: Actor, *actions: Action) -> bool:
    for action in actions:
        try:
            node.app.permit(actor, action)
            return True
        except PermissionDenied:
            pass
    return False


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
    _staff_at(node, actor)
    _fresh(node)
    day = calendar_day(today, "today") if today is not None else node.app.clock().date()
    deciders = _may(node, actor, Action.REVIEW_HELD, Action.APPROVE_HELD)
    responders = _may(node, actor, *READ_ACTIONS)
    with node.engine.connect() as conn:
        a = actor.agency
        waiting = tuple(held_requests(conn, a)) if deciders else ()
        probes = tuple(probe_notices(conn, a)) if deciders and held else ()
        alerts = tuple(open_incidents(conn, a)) if responders else ()
        queue = WorkQueue(a, tuple(pending_approvals(conn, a)), waiting if held else (),
                          tuple(reviews_due(conn, a, day)), tuple(body_requests(conn, a)), probes,
                          held_waiting=len(waiting), incidents=alerts if held else (), incidents_open=len(alerts))
    shown = [h.subject for h in queue.held] + [p.subject for p in queue.probes if p.subject]
    if shown:
        node.app.record_listing(actor, shown, HELD_LISTING, HELD_LISTING_PURPOSE,
                                (Action.REVIEW_HELD, Action.APPROVE_HELD))
    named = [s for i in queue.incidents for s in i.subjects]
    if named:
        node.app.record_listing(actor, named, INCIDENT_LISTING, INCIDENT_LISTING_PURPOSE, READ_ACTIONS)
    return queue


# -- auditors ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    position: int
    at: str
    event: str
    agency: str
    actor: str | None
    subject: str
    detail: dict[str, Any]


def timeline_rows(conn: Connection, subjects: Sequence[str]) -> list[TimelineEntry]:
    rows = conn.execute(select(timeline_events).where(timeline_events.c.subject.in_(list(subjects)))
                        .order_by(timeline_events.c.position, timeline_events.c.subject)).all()
    seen: set[int] = set()
    out = []
    for r in rows:
        if r.position in seen:  # one event about two pseudonyms of the same person (a number change)
            continue
        seen.add(r.position)
        out.append(TimelineEntry(r.position, r.at, r.event, r.agency, r.actor, r.subject,
                                 json.loads(r.detail)))
    return out


def subject_timeline(node: NodeParts, actor: Actor, subject: str, purpose: str) -> list[TimelineEntry]:
    """Every event about the person, in log order. Auditors only; the read itself is recorded first."""
    node.app.permit(actor, Action.AUDIT)
    s = node.app.subject(subject)
    node.app.record_access(actor, s, "subject timeline", purpose)
    _fresh(node)
    with node.engine.connect() as conn:
        return timeline_rows(conn, aliases(conn, s))
