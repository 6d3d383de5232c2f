"""What the hub sends an agency node in hub mode, applied to the node (issue 19, docs/linkage.md).

Each message from the agency's inbox is opened (``ledger.linkage.agency.open_from_hub``: the hub's, of a hub
kind), dropped if its event id was applied before (``linkage_applied``, durable), and applied:

* a **routed query** (this agency is the provider): a provision request received from the querier under this
  agency's own code, held for staff when the hub marks it ``staff`` (a holder elsewhere protects the person —
  the hub names neither who nor why) and whenever a flag held here says so (local flags decide without the
  hub); the hub's request id is kept (``linkage_routed``) and the answer is sent by the bridge's next push;
* a **consultation** (this agency holds a flag): kept for its staff (``linkage_consultations``), naming the
  provider and never the querier;
* an **answer** to one of this agency's queries: its status and data on the query (``linkage_queries``);
* a **handover** (take over flags on a person, no holder named) or **handed over** (the municipality this agency
  reported a move to now holds): ``consumers.linkage_moves``;
* an **advice relay** or **escalation** about a request routed here: kept for its staff; an escalation
  ``decide_again`` reopens the request the hub refused (``consumers.linkage_decisions.reopen``);
* a **protection-body request** routed here, or a step of the answer to this body's own: ``consumers.linkage_bodies``;
* a **proxy cancelled** elsewhere (another agency holding the person cancelled this agency's registration):
  recorded on the registration (``consumers.linkage_proxy_registrations.cancelled``).

A message that does not open, is not the hub's, or cannot be applied is parked (``linkage_parked``) with its
bytes and passed; the inbox is committed only after the database commit of everything polled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update

from consumers import linkage_bodies, linkage_decisions, linkage_moves, linkage_proxy_registrations
from consumers.linkage_receipt import note, receive, recover
from consumers.linkage_seen import saw
from ledger.app import FlagLedger
from ledger.errors import BrokerUnavailable, Code, FlagLedgerError, NotFoundError
from ledger.linkage.agency import Inbound, open_from_hub
from ledger.linkage.body_requests import BodyOutcomeMessage, RoutedBodyRequest
from ledger.linkage.consultation import AdviceRelay, Escalation
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import AnswerMessage, Consultation, Message, RoutedQuery
from ledger.linkage.proxy_registrations import ProxyCancelled
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.transport import Delivery, Transport
from ledger.runtime.linkage import subject_of
from ledger.runtime.tables import (
    linkage_applied,
    linkage_consultations,
    linkage_parked,
    linkage_queries,
)

__all__ = ["Pulled", "park", "pull"]

log = logging.getLogger("flagledger.linkage")
# a waiting pull asks its ``wake`` this often: what a local commit may wait for the loop's next push, against a
# cheap local read per slice (docs/performance.md, propagation)
WAKE_SLICE_MS = 10


@dataclass
class Pulled:
    applied: list[str] = field(default_factory=list)  # kinds applied, in order
    replays: int = 0
    parked: list[str] = field(default_factory=list)  # error codes


def park(conn: Connection, now: datetime, direction: str, code: str, reason: str, message: bytes | None) -> None:
    log.warning("linkage message parked (%s, %s): %s", direction, code, reason)
    conn.execute(
        insert(linkage_parked).values(
            at=now.isoformat(), direction=direction, code=code, reason=reason[:2000], message=message
        )
    )


def _apply(app: FlagLedger, agency: str, conn: Connection, inbound: Inbound, now: datetime, hub_staff: bool) -> None:
    m = inbound.message
    if isinstance(m, RoutedQuery):
        note(app, conn, m, hub_staff)  # received after this commit (consumers.linkage_receipt): once, crash or not
    elif isinstance(m, Consultation):
        conn.execute(
            insert(linkage_consultations).values(
                request_id=m.request_id,
                holder=agency,
                provider=m.provider,
                subject=subject_of(m.code),
                procedure=m.procedure,
                legal_item=m.legal_item,
                info_kind=m.info_kind,
                received_at=now.isoformat(),
            )
        )
    elif isinstance(m, AnswerMessage):
        done = conn.execute(
            update(linkage_queries)
            .where(linkage_queries.c.request_id == m.request_id, linkage_queries.c.querier == agency)
            .values(status=m.status, data=m.data)
        )
        if done.rowcount != 1:
            raise NotFoundError("an answer to no query of this agency")
    elif isinstance(m, (RoutedBodyRequest, BodyOutcomeMessage)):  # a body's request; the answer to one's own
        linkage_bodies.apply(app, conn, m, now)
    elif isinstance(m, linkage_moves.FROM_HUB):  # asked; the one asked took over; moved on; a last holder warned
        linkage_moves.apply(conn, agency, m, now)
    elif isinstance(m, (AdviceRelay, Escalation)):  # about a request routed here: the staff's case
        if isinstance(m, Escalation):  # decide_again: the hub refused the decision made here, reopened
            linkage_decisions.reopen(app, conn, agency, m)
        linkage_decisions.note(conn, m, now.isoformat())
    elif isinstance(m, ProxyCancelled):  # another agency holding the person cancelled this agency's registration
        linkage_proxy_registrations.cancelled(app, agency, m)
    else:  # the flag map's kinds are the checks' (MapChecks) or parked
        raise NotFoundError(f"no handler for {type(m).kind}")


def pull(
    app: FlagLedger,
    engine: Engine,
    transport: Transport,
    keys: PartyKeys,
    directory: Directory,
    now: Callable[[], datetime],
    *,
    timeout_ms: int = 200,
    max_records: int = 100,
    gate: Callable[[Message], Message | None] | None = None,
    wake: Callable[[], bool] | None = None,
) -> Pulled:
    """Apply the hub's next messages; commit the inbox after the database commit of each. ``gate``: the flag
    map's checks (``consumers.linkage_map.MapGate``): the message to apply, or None for the map's own.
    ``wake``: asked every ``WAKE_SLICE_MS`` while the inbox is empty; True ends the wait (e.g. a local commit
    the loop should send now rather than after the whole timeout)."""
    out = Pulled()
    recover(app, engine, keys.name)
    at = now()
    sender_keys = directory.sender_keys(at)
    try:
        deliveries = _poll(transport, timeout_ms, max_records, wake)
        _pull(app, engine, deliveries, keys, at, sender_keys, out, gate)
    except BaseException:
        # the next pull hands this batch over again (applied ones are dropped by event id): without the rewind
        # it would go on after the failed message and its commit would pass it, never applied
        with suppress(BrokerUnavailable):
            transport.rewind()
        raise
    transport.commit()
    return out


def _poll(transport: Transport, timeout_ms: int, max_records: int, wake: Callable[[], bool] | None) -> list[Delivery]:
    """The inbox's next messages, waiting up to ``timeout_ms`` — in slices, between which ``wake`` may end it."""
    if wake is None or timeout_ms <= WAKE_SLICE_MS:
        return transport.poll(timeout_ms, max_records)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left = int((deadline - time.monotonic()) * 1000)
        got = transport.poll(max(0, min(WAKE_SLICE_MS, left)), max_records)
        if got or left <= WAKE_SLICE_MS or wake():
            return got


def _pull(
    app: FlagLedger,
    engine: Engine,
    deliveries: list[Delivery],
    keys: PartyKeys,
    at: datetime,
    sender_keys: SenderKeys,
    out: Pulled,
    gate: Callable[[Message], Message | None] | None,
) -> None:
    for delivery in deliveries:
        try:
            inbound = open_from_hub(keys, delivery.value, sender_keys)
        except FlagLedgerError as exc:
            with engine.begin() as conn:
                park(conn, at, "in", exc.code, str(exc), delivery.value)
            out.parked.append(exc.code)
            continue
        if inbound.hub_seq is not None:  # the hub's, signed: what the records made from now on are stamped with
            saw(app, engine, inbound.hub_seq)
        with engine.begin() as conn:
            seen = conn.execute(
                select(linkage_applied.c.event_id).where(linkage_applied.c.event_id == inbound.event_id)
            ).first()
            if seen is not None:
                out.replays += 1
                continue
        hub_staff = isinstance(inbound.message, RoutedQuery) and inbound.message.answer == "staff"
        try:
            if gate is not None:
                checked = gate(inbound.message)
                if checked is None:  # the flag map's own message, checked (or set aside without the map)
                    with engine.begin() as conn:
                        kind = type(inbound.message).kind
                        conn.execute(
                            insert(linkage_applied).values(
                                event_id=inbound.event_id, kind=kind, applied_at=at.isoformat()
                            )
                        )
                    out.applied.append(kind)
                    continue
                inbound = Inbound(inbound.event_id, checked)
            with engine.begin() as conn:
                _apply(app, keys.name, conn, inbound, at, hub_staff)
                conn.execute(
                    insert(linkage_applied).values(
                        event_id=inbound.event_id, kind=type(inbound.message).kind, applied_at=at.isoformat()
                    )
                )
            out.applied.append(type(inbound.message).kind)
            if isinstance(inbound.message, RoutedQuery):
                receive(app, engine, keys.name, inbound.message.request_id)
        except FlagLedgerError as exc:
            if exc.code in (Code.STORAGE, Code.BROKER_UNAVAILABLE):
                raise  # nothing committed past it: handed over again
            with engine.begin() as conn:
                park(conn, at, "in", exc.code, str(exc), delivery.value)
                conn.execute(
                    insert(linkage_applied).values(event_id=inbound.event_id, kind="parked", applied_at=at.isoformat())
                )
            out.parked.append(exc.code)
