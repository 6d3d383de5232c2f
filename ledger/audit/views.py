"""What auditors ask: a replay as of an instant, the flags on a person then, whether a request would have been
held then, and a person's whole timeline.

Every function takes an auditor (``Action.AUDIT``). Answers that name a person's protection (which agencies
hold which flags on them) are recorded as reads of protected details (an ``AccessRecord`` event) *before*
anything is returned, as :func:`projections.views.subject_timeline` does. Answers about the past read a
finished replay target (:mod:`ledger.audit.replay`), never the live views; the hold decision is the request
path's own rule (:func:`ledger.domain.provision.must_hold`) over the nationwide state as the views hold it
(:class:`projections.flag_state.NationwideState`), pointed at the replayed database (rebuilt from the verified
log by the replay itself, so no live row is trusted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import Actor
from ledger.audit.replay import Progress, ReplayInfo, ReplaySummary, read_replay_info, replay
from ledger.audit.replay_target import open_target, resolve_target
from ledger.domain.provision import must_hold
from ledger.domain.types import Action, agency_code
from ledger.errors import InputError, NotFoundError, StateConflict, StorageError
from projections.flag_state import NationwideState, agency_flags
from projections.node import NodeParts
from projections.timeline import timeline_events
from projections.views import TimelineEntry, aliases, subject_timeline

__all__ = [
    "AgencyFlagThen",
    "HoldAnswer",
    "SubjectFlagsThen",
    "audit_replay",
    "audit_timeline",
    "flags_then",
    "would_hold_then",
]


def audit_replay(
    node: NodeParts,
    actor: Actor,
    *,
    as_of: datetime | None,
    until: int | None = None,
    target: str | None = None,
    reuse: bool = False,
    progress: Progress | None = None,
    page: int = 1000,
) -> tuple[str, Engine, ReplaySummary]:
    """Replay every projection into ``target`` (default: a new file under ``DATA_DIR/audit/``).

    Returns the target URL, an engine on it (the caller disposes of it) and what the replay did.
    """
    node.app.permit(actor, Action.AUDIT)
    label = as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ") if as_of is not None else f"position-{until}"
    url = resolve_target(node.config, target, label)
    engine = open_target(url)
    try:
        summary = replay(
            node.app,
            engine,
            as_of=as_of,
            until=until,
            generated_by=str(actor),
            reuse=reuse,
            progress=progress,
            page=page,
        )
    except BaseException:
        engine.dispose()
        raise
    return url, engine, summary


def _finished(engine: Engine) -> ReplayInfo:
    info = read_replay_info(engine)
    if info is None:
        raise InputError("that database holds no as-of replay: run `flagledger audit replay --as-of ...` first")
    if not info.finished:
        raise StateConflict("that replay did not finish (interrupted or failed): replay into a new target")
    return info


@dataclass(frozen=True)
class AgencyFlagThen:
    agency: str
    subject: str
    flag: str
    active: bool
    since: str
    released_at: str | None
    request_id: str
    reason: str
    review_date: str | None


@dataclass(frozen=True)
class SubjectFlagsThen:
    as_of: str | None
    until_position: int | None
    subject: str
    aliases: tuple[str, ...]
    protected: bool
    nationwide: dict[str, tuple[str, ...]]  # flag → the auditor's own agency if it held it (else empty)
    per_agency: tuple[AgencyFlagThen, ...]  # the auditor's agency's holdings, active or released by then


def _known(engine: Engine, subjects: Sequence[str]) -> bool:
    """Whether anything in the replayed log is about one of these pseudonyms."""
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(timeline_events).where(timeline_events.c.subject.in_(list(subjects)))
        ).scalar_one()
    return bool(n)


def _subject_then(node: NodeParts, engine: Engine, subject: str) -> tuple[ReplayInfo, str, list[str]]:
    info = _finished(engine)
    s = node.app.subject(subject)
    try:
        with engine.connect() as conn:
            names = aliases(conn, s)
        known = _known(engine, names)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the replay target: {exc}") from exc
    if not known:
        when = info.as_of or f"position {info.until_position}"
        raise NotFoundError(
            f"nothing in the log up to {when} is about this subject: check the number (a request about "
            "a person the log never names would not have been held)"
        )
    return info, s, names


def flags_then(node: NodeParts, actor: Actor, engine: Engine, subject: str, purpose: str) -> SubjectFlagsThen:
    """Which flags applied to ``subject`` at the replay's instant nationwide, and the auditor's own agency's
    holdings then. Other agencies' holdings are not named (issue 18: no staff member of another agency
    learns who protects a person, an auditor's purpose included)."""
    node.app.permit(actor, Action.AUDIT)
    info, s, names = _subject_then(node, engine, subject)
    node.app.record_access(actor, s, f"as-of replay {info.as_of or info.until_position}: flags", purpose)
    nationwide = NationwideState(engine).flags_for(s)
    with engine.connect() as conn:
        rows = conn.execute(
            select(agency_flags)
            .where(agency_flags.c.subject.in_(names) & (agency_flags.c.agency == actor.agency))
            .order_by(agency_flags.c.agency, agency_flags.c.subject, agency_flags.c.flag)
        ).all()
    held = tuple(
        AgencyFlagThen(
            r.agency, r.subject, r.flag, bool(r.active), r.since, r.released_at, r.request_id, r.reason, r.review_date
        )
        for r in rows
    )
    return SubjectFlagsThen(
        info.as_of,
        info.until_position,
        s,
        tuple(names),
        bool(nationwide),
        {f: tuple(a for a in h if a == actor.agency) for f, h in sorted(nationwide.items())},
        held,
    )


@dataclass(frozen=True)
class HoldAnswer:
    as_of: str | None
    until_position: int | None
    subject: str
    requester: str
    held: bool
    flags: tuple[str, ...]  # the nationwide flags the rule saw
    holders_notified: tuple[str, ...]  # the auditor's agency, if a ProbeNotice would have gone to it
    rule: str = "held whenever any agency holds NO_AUTO_RESPONSE on the person nationwide"


def would_hold_then(
    node: NodeParts, actor: Actor, engine: Engine, subject: str, requester: str, purpose: str
) -> HoldAnswer:
    """Would a provision request about ``subject`` from ``requester`` have been held at the replay's instant.

    The decision is the live request path's: :func:`must_hold` over the nationwide state as
    :class:`NationwideState` reads it. (The rule does not depend on who asks; the requester is part of the
    question and of the recorded read.)
    """
    node.app.permit(actor, Action.AUDIT)
    agency_code(requester)
    info, s, _ = _subject_then(node, engine, subject)
    node.app.record_access(
        actor, s, f"as-of replay {info.as_of or info.until_position}: would a request from {requester} be held", purpose
    )
    state = NationwideState(engine).flags_for(s)
    holders = tuple(sorted({a for hs in state.values() for a in hs} & {actor.agency}))  # never another's
    return HoldAnswer(info.as_of, info.until_position, s, requester, must_hold(state), tuple(sorted(state)), holders)


def audit_timeline(node: NodeParts, actor: Actor, subject: str, purpose: str) -> list[TimelineEntry]:
    """Every event about the person (all their pseudonyms), in log order; the read is recorded first."""
    entries = subject_timeline(node, actor, subject, purpose)
    # the read just recorded is about the person too; a person the log otherwise never names is a typo
    if all(e.event == "AccessRecord.ProtectedDetailsRead" for e in entries):
        raise NotFoundError(
            "nothing in the log is about this subject (other than reads of protected details): check the number"
        )
    return entries
