"""The agency itself: the flags it holds (or held), each with its history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ledger.app import Actor
from projections.flag_state import agency_flags, flag_history
from projections.node import NodeParts
from projections.view_reads import aliases, fresh, staff_at

__all__ = ["AgencyFlag", "FlagEvent", "agency_flag_state"]


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
    staff_at(node, actor)
    fresh(node)
    with node.engine.connect() as conn:
        stmt = select(agency_flags).where(agency_flags.c.agency == actor.agency)
        if subject is not None:
            stmt = stmt.where(agency_flags.c.subject.in_(aliases(conn, node.app.subject(subject))))
        rows = conn.execute(stmt.order_by(agency_flags.c.subject, agency_flags.c.flag)).all()
        hist = conn.execute(
            select(flag_history)
            .where(
                (flag_history.c.agency == actor.agency) & flag_history.c.subject.in_(sorted({r.subject for r in rows}))
            )
            .order_by(flag_history.c.position, flag_history.c.seq)
        ).all()
    out = []
    for r in rows:
        events = tuple(
            FlagEvent(h.action, h.at, h.request_id, h.review_date)
            for h in hist
            if h.subject == r.subject and h.flag == r.flag
        )
        out.append(
            AgencyFlag(
                r.agency,
                r.subject,
                r.flag,
                bool(r.active),
                r.since,
                r.request_id,
                r.reason,
                r.review_date,
                r.released_at,
                events,
            )
        )
    return out
