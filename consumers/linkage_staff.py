"""What an agency's staff do with the linkage in hub mode, without a transport (the bridge sends later): file a
person at the hub, ask another agency through the hub, read a query's state and the consultations the hub
relayed (docs/linkage.md). The command line and ``consumers.linkage_bridge`` both use these."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from ledger.app import Actor, FlagLedger
from ledger.app.values import QuerierAnswer
from ledger.domain.agencies import Agency
from ledger.domain.law import check_query
from ledger.domain.types import Action
from ledger.errors import InputError, NotFoundError
from ledger.linkage.messages import QueryMessage
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_consultations, linkage_queries, linkage_registrations

__all__ = ["FILED", "KEPT", "SENT", "ask", "consultations", "file_person", "querier_answer", "query", "queued"]

KEPT, SENT, FILED = 0, 1, 2  # linkage_registrations.sent: kept until an act needs it, sent, filed (send now)


def file_person(app: FlagLedger, engine: Engine, number: str) -> str:
    """File the person at the hub under this agency's code (sent at the next push, with no act about them
    needed: e.g. a resident whose data this agency provides); their subject here."""
    subject = app.subject(number)
    with engine.begin() as conn:
        conn.execute(
            update(linkage_registrations)
            .where(linkage_registrations.c.subject == subject, linkage_registrations.c.sent == KEPT)
            .values(sent=FILED)
        )
        kept = conn.execute(
            select(linkage_registrations.c.subject).where(linkage_registrations.c.subject == subject)
        ).first()
    if kept is None:  # a subject typed, not a number: nothing to register with
        raise NotFoundError("file a person by their individual number: no registration is kept for this subject")
    return subject


def ask(
    app: FlagLedger,
    engine: Engine,
    actor: Actor,
    provider: str,
    number_or_subject: str,
    *,
    legal_item: int,
    procedure: str,
    info_kind: str,
) -> str:
    """A query of ``actor``'s staff to ``provider`` (an agency not hosted here), through the hub: queued now,
    sent at the next push; returns the request id (:func:`query` shows its state)."""
    app.authorise_any(actor, Action.REQUEST_PROVISION)
    if provider in app.hosted:
        raise InputError("the provider is hosted here: ask it directly", field="provider")
    # the law catalogue, with this agency's own kind and the provider's where its registration reached this node,
    # before anything is queued: the hub, which knows every provider's kind, would park it anyway
    known = app.find(Agency, Agency.create_id(provider))
    check_query(legal_item, procedure, info_kind, app.agency(actor.agency).kind, known.kind if known else None)
    subject = app.subject(number_or_subject)
    request_id = uuid.uuid4().hex
    QueryMessage(request_id, code_of(subject), provider, procedure, legal_item, info_kind).check()
    with engine.begin() as conn:
        conn.execute(
            insert(linkage_queries).values(
                request_id=request_id,
                querier=actor.agency,
                staff=actor.staff,
                provider=provider,
                subject=subject,
                procedure=procedure,
                legal_item=legal_item,
                info_kind=info_kind,
                status="queued",
                data="",
                asked_at=app.clock().isoformat(),
            )
        )
    return request_id


def query(engine: Engine, agency: str, request_id: str) -> dict[str, Any]:
    """A query ``agency`` asked: its provider, status (queued, sent, or the answer's) and data; another
    agency's or an unknown id alike: not found."""
    with engine.connect() as conn:
        row = conn.execute(
            select(linkage_queries).where(
                linkage_queries.c.request_id == request_id, linkage_queries.c.querier == agency
            )
        ).first()
    if row is None:
        raise NotFoundError("unknown query")
    return {"request_id": row.request_id, "provider": row.provider, "status": row.status, "data": row.data}


def querier_answer(engine: Engine, agency: str, request_id: str) -> QuerierAnswer | None:
    """What ``agency``'s staff see of a query through the hub, in the one querier mapping's words: queued and
    sent look like any manual answer in progress (nothing is answered while the hub is unreachable); None if
    ``agency`` asked no such query through the hub."""
    with engine.connect() as conn:
        row = conn.execute(
            select(linkage_queries.c.status).where(
                linkage_queries.c.request_id == request_id, linkage_queries.c.querier == agency
            )
        ).first()
    if row is None:
        return None
    if row.status == "answered":
        return QuerierAnswer(request_id, "answered", QuerierAnswer.ANSWERED)
    if row.status == "not_provided":
        return QuerierAnswer(request_id, "not_provided", QuerierAnswer.NOT_PROVIDED)
    return QuerierAnswer(request_id, "in_progress", QuerierAnswer.IN_PROGRESS)


def queued(engine: Engine) -> int:
    """Queries not yet sent to the hub (it was unreachable, or the person's number was never typed)."""
    with engine.connect() as conn:
        count = select(func.count()).select_from(linkage_queries).where(linkage_queries.c.status == "queued")
        return int(conn.execute(count).scalar_one())


def consultations(engine: Engine, holder: str) -> list[dict[str, Any]]:
    """Consultations the hub relayed to ``holder`` (no querier in them), oldest first."""
    t = linkage_consultations
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.holder == holder).order_by(t.c.received_at, t.c.request_id))
        return [dict(r._mapping) for r in rows]
