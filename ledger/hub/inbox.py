"""What the hub's loop keeps about its inbox: the event ids it applied, what it parked, and what it owes.

* **Applied**: (verified sender, event id) of every message applied, written in the transaction that applied
  it; a message seen again — the transport handing it over after a crash, the broker operator re-injecting it —
  is dropped (docs/linkage.md: the replay limit of the primitives). The loop asks for a whole poll's ids in one
  ``IN`` query (:func:`applied_among`); inside the poll's transaction the answer, and every id marked since,
  stand in for the per-message lookup (``ledger.hub.txn``).
* **Parked**: a message that does not open, is not its sender's, is malformed, or asks what its sender may not
  do is kept with its reason and committed past: it never blocks the inbox and is never silently dropped.
* **Outbox**: the sealed messages a decision owes other parties, written in the decision's transaction and
  deleted once the broker stored them, so a hub that dies between its commit and the send still sends them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, select, tuple_
from sqlalchemy.exc import SQLAlchemyError

from ledger.hub import txn
from ledger.hub.tables import REASON, hub_applied, hub_outbox, hub_parked
from ledger.linkage.transport import Delivery
from ledger.storage import storage_error

__all__ = [
    "Parked",
    "applied_among",
    "applied_seq",
    "mark_applied",
    "owe",
    "owed",
    "paid",
    "park",
    "parked",
    "was_applied",
]


@dataclass(frozen=True)
class Parked:
    topic: str
    position: int
    claimed_sender: str | None
    event_id: str | None
    code: str
    reason: str
    message: bytes


def applied_seq(conn: Connection, sender: str, event_id: str) -> int | None:
    poll = txn.current(conn=conn)
    if poll is not None:
        known, seq = poll.applied((sender, event_id))
        if known:
            return seq
    a = hub_applied.c
    found = conn.execute(select(a.seq).where((a.sender == sender) & (a.event_id == event_id))).scalar()
    return None if found is None else int(found)


def was_applied(engine: Engine, sender: str, event_id: str) -> bool:
    try:
        with txn.reading(engine) as conn:  # in the loop's poll: answered by the poll's IN query
            return applied_seq(conn, sender, event_id) is not None
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's applied messages", exc) from exc


BATCH = 400  # (sender, event id) pairs per IN query: well inside every backend's parameter limit


def applied_among(conn: Connection, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Which of ``keys`` (sender, event id) were applied, with their numbers: one query per ``BATCH``."""
    a = hub_applied.c
    wanted, found = sorted(set(keys)), {}
    for at in range(0, len(wanted), BATCH):
        stmt = select(a.sender, a.event_id, a.seq).where(tuple_(a.sender, a.event_id).in_(wanted[at : at + BATCH]))
        found.update({(str(s), str(e)): int(q) for s, e, q in conn.execute(stmt)})
    return found


_MARK = insert(hub_applied)
_OWE = insert(hub_outbox)


def mark_applied(conn: Connection, sender: str, event_id: str, seq: int) -> None:
    row = {"sender": sender, "event_id": event_id, "seq": seq}
    if (poll := txn.current(conn=conn)) is not None:
        poll.mark((sender, event_id), seq)  # answers applied_seq for the rest of the poll
        poll.later(_MARK, row)  # all of the poll's in one executemany at its commit
        return
    conn.execute(_MARK, row)


def park(engine: Engine, delivery: Delivery, sender: str | None, event_id: str | None, code: str, why: str) -> None:
    row = {
        "topic": delivery.topic,
        "position": delivery.partition * 2**40 + delivery.offset,
        "claimed_sender": sender,
        "event_id": event_id,
        "code": code[:24],
        "reason": why[:REASON],
        "message": bytes(delivery.value),
    }
    try:
        with txn.savepoint(engine) as conn:  # in the loop's poll: committed with it
            conn.execute(insert(hub_parked).values(**row))
    except SQLAlchemyError as exc:
        raise storage_error("cannot park a message at the hub", exc, "the inbox is not committed past it") from exc


def parked(engine: Engine) -> list[Parked]:
    """What the loop parked, oldest first (for the operator, and the tests)."""
    p = hub_parked.c
    stmt = select(p.topic, p.position, p.claimed_sender, p.event_id, p.code, p.reason, p.message).order_by(p.id)
    try:
        with engine.connect() as conn:
            return [Parked(*row) for row in conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's parked messages", exc) from exc


def owe(conn: Connection, recipient: str, message: bytes) -> None:
    row = {"recipient": recipient, "message": message}
    if (poll := txn.current(conn=conn)) is not None:
        poll.later(_OWE, row)  # read back only after the commit, to be sent: inserted with it, in order
        return
    conn.execute(_OWE, row)


def owed(engine: Engine) -> list[tuple[int, str, bytes]]:
    o = hub_outbox.c
    try:
        with engine.connect() as conn:
            return [(int(i), str(r), bytes(m)) for i, r, m in conn.execute(select(o.id, o.recipient, o.message))]
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's outbox", exc) from exc


def paid(engine: Engine, ids: list[int]) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(delete(hub_outbox).where(hub_outbox.c.id.in_(ids)))
    except SQLAlchemyError as exc:
        raise storage_error("cannot clear the hub's outbox", exc, "its messages may be sent again") from exc
