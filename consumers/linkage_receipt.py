"""Receiving a query the hub routed to this agency (as provider) exactly once (hub mode, docs/linkage.md).

The provision request is committed to the event store, the bridge's own rows to the views database: two
transactions (two databases on SQLite). So the receipt is noted first — the routed query's fields, the log's
position before it, state ``receiving`` — in the transaction that marks the hub's message applied; then the
request is received and the note completed. After a crash between the two, :func:`recover` looks in the log,
after the noted position, for a request from that querier about that subject with those fields that no other
routed query owns: found, it is adopted; not found, it is received now. Never twice, never lost.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, insert, select, update

from ledger.app import FlagLedger
from ledger.errors import Code, FlagLedgerError
from ledger.linkage.messages import RoutedQuery
from ledger.runtime.linkage import subject_of
from ledger.runtime.tables import linkage_parked, linkage_routed

__all__ = ["NOBODY", "NOBODY_SENT", "RECEIVING", "note", "receive", "recover"]

RECEIVING = "receiving"
NOBODY = "nobody"  # a person this agency never filed: answered "in progress" once, nothing to decide
NOBODY_SENT = "nobody_sent"

_RECEIVED = "ledger.domain.provision:ProvisionRequest.Received"

log = logging.getLogger("flagledger.linkage")


def note(app: FlagLedger, conn: Connection, m: RoutedQuery) -> None:
    """Note the routed query in the transaction that marks its message applied."""
    conn.execute(
        insert(linkage_routed).values(
            hub_request_id=m.request_id,
            local_request_id=m.request_id,  # until received: the hub's id holds the unique place
            answered=RECEIVING if m.code else NOBODY,
            querier=m.querier,
            subject=subject_of(m.code) if m.code else "",
            procedure=m.procedure,
            legal_item=m.legal_item,
            info_kind=m.info_kind,
            staff_answer=int(m.answer == "staff"),
            from_position=app.max_position(),
        )
    )


def _adoptable(app: FlagLedger, engine: Engine, agency: str, row: Any) -> UUID | None:
    """A request received after the note, matching it, that no routed query owns yet."""
    with engine.connect() as conn:
        owned = set(conn.execute(select(linkage_routed.c.local_request_id)).scalars())
    mapper, start = app.signed_mapper, int(row.from_position) + 1
    wanted = (agency, row.querier, row.subject, row.legal_item, row.procedure, row.info_kind)
    while True:
        rows = app.recorder.select_notifications(start=start, limit=500, topics=[_RECEIVED])
        for n in rows:
            e: Any = mapper.decode(mapper.open(n.state))
            found = (e.agency, e.querier, e.subject, e.legal_item, e.procedure, e.info_kind)
            if found == wanted and str(n.originator_id) not in owned:
                return UUID(str(n.originator_id))
        if len(rows) < 500:
            return None
        start = rows[-1].id + 1


def receive(app: FlagLedger, engine: Engine, agency: str, hub_request_id: str) -> None:
    """Receive the noted routed query (or adopt what a crash left received); the hub's mark ``staff`` holds it,
    and so does a flag held here (local flags decide without the hub)."""
    with engine.connect() as conn:
        row = conn.execute(select(linkage_routed).where(linkage_routed.c.hub_request_id == hub_request_id)).first()
    if row is None or row.answered != RECEIVING:
        return
    local = _adoptable(app, engine, agency, row)
    if local is None:
        try:
            answer = app.receive_query(
                row.querier,
                agency,
                row.subject,
                legal_item=row.legal_item,
                procedure=row.procedure,
                info_kind=row.info_kind,
                staff_answer=bool(row.staff_answer),
            )
        except FlagLedgerError as exc:
            if exc.code in (Code.STORAGE, Code.BROKER_UNAVAILABLE):
                raise  # noted: received at the next turn
            log.warning("routed query %s not received: %s [%s]", hub_request_id, exc, exc.code)
            with engine.begin() as conn:
                conn.execute(
                    insert(linkage_parked).values(
                        at=app.clock().isoformat(), direction="in", code=exc.code, reason=str(exc)[:2000], message=None
                    )
                )
                conn.execute(
                    update(linkage_routed)
                    .where(linkage_routed.c.hub_request_id == hub_request_id)
                    .values(answered=NOBODY)  # the querier hears "in progress", as for any manual answer
                )
            return
        local = UUID(answer.request_id)
    with engine.begin() as conn:
        conn.execute(
            update(linkage_routed)
            .where(linkage_routed.c.hub_request_id == hub_request_id, linkage_routed.c.answered == RECEIVING)
            .values(local_request_id=str(local), answered="")
        )


def recover(app: FlagLedger, engine: Engine, agency: str) -> int:
    """Finish every receipt a crash interrupted; how many."""
    with engine.connect() as conn:
        waiting = list(
            conn.execute(
                select(linkage_routed.c.hub_request_id).where(linkage_routed.c.answered == RECEIVING)
            ).scalars()
        )
    for hub_request_id in waiting:
        receive(app, engine, agency, hub_request_id)
    return len(waiting)
