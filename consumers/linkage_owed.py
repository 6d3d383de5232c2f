"""What the node's bridge owes the hub from its own tables, beside its log (``consumers.linkage_bridge``,
docs/linkage.md): the answers to queries the hub routed here, once the querier may see them (a ``staff`` one
signed by the two staff members who decided it, ``consumers.linkage_decisions``); the queries its staff queued;
the advice its staff gave as holder; its staff roster's events the hub was not sent; and how far all of it went.

Each is sent, then recorded sent through ``mark`` (now, or after the tick's digest is stored): a crash between
sends it again, and the hub drops the repeat."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from uuid import UUID

from sqlalchemy import Engine, insert, select, update

from consumers import linkage_decisions as decisions
from consumers.linkage_inbound import park
from consumers.linkage_receipt import HUB_STAFF, NOBODY, NOBODY_SENT
from ledger.app import FlagLedger
from ledger.domain.roster import StaffRoster
from ledger.errors import FlagLedgerError
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.consultation import DECIDED
from ledger.linkage.messages import AnswerMessage, QueryMessage
from ledger.linkage.staff_rosters import roster_events
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_advice, linkage_position, linkage_queries, linkage_routed

__all__ = ["LOG", "ROSTER", "advice", "answers", "position", "queries", "roster", "set_position"]

Mark = Callable[[Callable[[], None]], None]

LOG, ROSTER = "log", "roster"  # linkage_position: the own log read up to; roster events sent


def position(engine: Engine, name: str = LOG) -> int:
    with engine.connect() as conn:
        found = conn.execute(select(linkage_position.c.position).where(linkage_position.c.name == name)).scalar()
    return int(found or 0)


def set_position(engine: Engine, position: int, name: str = LOG) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(linkage_position).where(linkage_position.c.name == name).values(position=position))
        if done.rowcount == 0:
            conn.execute(insert(linkage_position).values(name=name, position=position))


def roster(app: FlagLedger, engine: Engine, agency: str, end: AgencyEnd, mark: Mark, kinds: list[str]) -> None:
    """The roster stream's events the hub has not been sent (after a certification or a revocation)."""
    stream = StaffRoster.create_id(agency)
    head = app.signed_store.stored_head(stream)
    if head is None:
        return  # no staff signing at this agency yet: nothing the hub could check a decision against
    sent = position(engine, ROSTER)
    if head[0] <= sent:
        return  # its versions count its events: all sent (not read and checked again on every push)
    events = roster_events((type(e).__name__, vars(e)) for e in app.events.get(stream))
    if len(events) > sent:
        end.send_roster(events[sent:], sent)
        mark(lambda: set_position(engine, len(events), ROSTER))
        kinds.append("staff_roster")


def advice(engine: Engine, end: AgencyEnd, mark: Mark, kinds: list[str]) -> None:
    with engine.connect() as conn:
        rows = conn.execute(select(linkage_advice).where(linkage_advice.c.sent == 0)).all()
    for row in rows:
        end.advise(row.request_id, row.advice)
        mark(partial(_advised, engine, row.request_id))
        kinds.append("advice")


def _advised(engine: Engine, request_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(linkage_advice).where(linkage_advice.c.request_id == request_id).values(sent=1))


def answers(app: FlagLedger, engine: Engine, agency: str, end: AgencyEnd, mark: Mark, kinds: list[str]) -> None:
    """Answer each routed query whose answer the querier may now see and was not sent yet."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(linkage_routed).where(linkage_routed.c.answered.in_(("", "in_progress", NOBODY)))
        ).all()
    for row in rows:
        if row.answered == NOBODY:  # nothing here to decide, ever: "in progress", as any manual answer
            status, done = "in_progress", NOBODY_SENT
        else:
            status = done = app.querier_answer(UUID(row.local_request_id)).status
        if status == row.answered:
            continue
        if row.staff_answer == HUB_STAFF and status in DECIDED:  # the hub takes it only signed by two of the staff
            try:
                signed = decisions.staff_answer(
                    engine, agency, row.hub_request_id, row.local_request_id, status, app.roster(agency)
                )
            except FlagLedgerError as exc:  # decided unsigned: sent plain, the hub refuses and escalates
                with engine.begin() as conn:
                    park(conn, app.clock(), "out", exc.code, str(exc), None)
            else:
                end.answer_decided(signed)
                mark(partial(_answered, engine, row.hub_request_id, done))
                kinds.append(signed.kind)
                continue
        end.send(AnswerMessage(row.hub_request_id, status), ANSWER_SIZE)
        mark(partial(_answered, engine, row.hub_request_id, done))
        kinds.append(AnswerMessage.kind)


def _answered(engine: Engine, hub_request_id: str, done: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(linkage_routed).where(linkage_routed.c.hub_request_id == hub_request_id).values(answered=done)
        )


def queries(engine: Engine, end: AgencyEnd, mark: Mark, register: Callable[[str], bool], kinds: list[str]) -> None:
    """The queries this agency's staff asked another agency, each once its person's registration went first
    (``register``: False while their number was never typed — the query stays queued, visible)."""
    with engine.connect() as conn:
        rows = conn.execute(select(linkage_queries).where(linkage_queries.c.status == "queued")).all()
    for row in rows:
        if not register(row.subject):
            continue  # stays queued, visible; its number must be typed once
        message = QueryMessage(
            row.request_id, code_of(row.subject), row.provider, row.procedure, row.legal_item, row.info_kind
        )
        end.send(message)
        mark(partial(_query_sent, engine, row.request_id))
        kinds.append(message.kind)


def _query_sent(engine: Engine, request_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(linkage_queries)
            .where(linkage_queries.c.request_id == request_id, linkage_queries.c.status == "queued")
            .values(status="sent")
        )
