"""The work queue of an agency node in linkage hub mode (issue 19, docs/linkage.md): the projections' queue
(``projections.views.work_queue``) with what the hub brought, from the bridge's tables —

* **consultations** (as holder): the hub asks this agency's advice on a query about a person it protects; for
  the agency's deciders (reviewers, approvers), as probe notices are, and their listing recorded as a read of
  protected details; the querier is never in them (the hub does not send it);
* **cases** (as provider): for each held request the hub routed with the "staff answer" mark, the holders'
  advice combined and unnamed, its basis and the escalations — for the deciders, beside the held request;
* **escalations** (the administrator's queue): a held routed request the holders did not advise on by the
  deadline, or whose decision the hub refused — the request id and the reason only, for administrators, so
  they can chase the deciders: no person, no querier, no holder.

The command line (``view queue``), the API (``GET /api/v1/queue``) and the staff console read the queue here.
A node in shared mode gets the projections' queue unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from consumers.linkage_decisions import basis
from consumers.linkage_receipt import HUB_STAFF
from ledger.app import Actor
from ledger.domain.types import Action
from ledger.errors import PermissionDenied
from ledger.linkage.consultation import Escalation
from ledger.runtime.linkage import hub_mode
from ledger.runtime.tables import linkage_advice, linkage_case_notes, linkage_consultations, linkage_routed
from projections import views
from projections.queue_linkage import CaseEntry, ConsultationEntry, EscalationEntry
from projections.queues import held_queue
from projections.views_queues import WorkQueue

__all__ = ["CONSULTATION_LISTING", "consultations", "escalations", "work_queue"]

CONSULTATION_LISTING = "consultation queue"
CONSULTATION_PURPOSE = "advice on a query about a person this agency protects"
DECIDERS = (Action.REVIEW_HELD, Action.APPROVE_HELD)


def _may(node: Any, actor: Actor, *actions: Action) -> bool:
    for action in actions:
        try:
            node.app.permit(actor, action)
            return True
        except PermissionDenied:
            pass
    return False


def consultations(conn: Connection, holder: str) -> list[ConsultationEntry]:
    c, a = linkage_consultations.c, linkage_advice.c
    rows = conn.execute(
        select(linkage_consultations, a.advice)
        .select_from(linkage_consultations.outerjoin(linkage_advice, a.request_id == c.request_id))
        .where(c.holder == holder)
        .order_by(c.received_at, c.request_id)
    ).all()
    return [
        ConsultationEntry(
            r.request_id, r.provider, r.subject, r.procedure, int(r.legal_item), r.info_kind, r.received_at, r.advice
        )
        for r in rows
    ]


def _open_routed(conn: Connection) -> list[Any]:
    """This agency's routed requests the hub marked ``staff`` whose local request is still held."""
    r, h = linkage_routed.c, held_queue.c
    return list(
        conn.execute(
            select(r.hub_request_id, r.local_request_id)
            .select_from(linkage_routed.join(held_queue, h.request_id == r.local_request_id))
            .where((r.staff_answer == HUB_STAFF) & (h.status == "held"))
            .order_by(r.local_request_id)
        ).all()
    )


def escalations(conn: Connection) -> list[EscalationEntry]:
    """The hub's escalations of requests still held here: id, reason, time — nothing else."""
    n = linkage_case_notes.c
    out: list[EscalationEntry] = []
    for row in _open_routed(conn):
        notes = conn.execute(
            select(n.reason, n.at)
            .where((n.hub_request_id == row.hub_request_id) & (n.kind == Escalation.kind))
            .order_by(n.id)
        ).all()
        out.extend(EscalationEntry(row.local_request_id, str(reason), str(at)) for reason, at in notes)
    return out


def _cases(conn: Connection) -> list[CaseEntry]:
    n = linkage_case_notes.c
    out: list[CaseEntry] = []
    for row in _open_routed(conn):
        found = basis(conn, row.hub_request_id)
        mine = (n.hub_request_id == row.hub_request_id) & (n.kind == Escalation.kind)
        late = conn.execute(select(n.reason).where(mine).order_by(n.id)).scalars()
        out.append(CaseEntry(row.local_request_id, found[0] if found else None, found[1] if found else None,
                             tuple(str(x) for x in late)))  # fmt: skip
    return out


def work_queue(node: Any, actor: Actor, today: date | None = None, *, held: bool = True) -> WorkQueue:
    """Everything waiting for ``actor``'s staff (``projections.views.work_queue``), and in hub mode what the hub
    brought: listed for deciders (consultations, cases) and administrators (escalations) when ``held``,
    counted otherwise. A listing of consultations is recorded as a read of the persons shown."""
    queue = views.work_queue(node, actor, today, held=held)
    if not hub_mode(node.config):
        return queue
    deciders = _may(node, actor, *DECIDERS)
    admins = _may(node, actor, Action.ADMINISTER)
    with node.engine.connect() as conn:
        asked = consultations(conn, actor.agency) if deciders else []
        cases = _cases(conn) if deciders and held else []
        late = escalations(conn) if admins else []
    queue = replace(
        queue,
        consultations=tuple(asked) if held else (),
        consultations_waiting=sum(1 for c in asked if c.advice is None),
        cases=tuple(cases),
        escalations=tuple(late),
    )
    if queue.consultations:
        node.app.record_listing(
            actor, [c.subject for c in queue.consultations], CONSULTATION_LISTING, CONSULTATION_PURPOSE, DECIDERS
        )
    return queue
