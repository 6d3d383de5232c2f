"""Applying one poll of the hub's inbox (issues #19, #23): opened first, then applied in one transaction.

1. **Open** every delivery of the poll with the hub's sealing key and check its signature (an agency's digest:
   each message it carries, as if it had come alone); one that does not open is kept to be parked in its place.
   A large poll is opened in worker processes, slice by slice, and joined again in its order
   (``ledger.hub.openers``): opening is independent per message; only applying is in order.
2. **Apply** them in order in one transaction (``Sequencer.poll``): the fence checked once, the replay check
   one ``IN`` query for the poll's (sender, event id)s and one for its sealed records' ids, the code map read
   once per code. What used to be a
   message's own transaction is a SAVEPOINT in it: a message refused half-way is rolled back to where it
   started and parked, in the same transaction, and the poll goes on — so the database holds exactly what
   one-by-one application would have committed, with the same numbers in the same order, or (a crash, a lost
   lease, a database failure) none of it, and the transport, not committed, hands the poll over again.
3. The outbox written in that transaction is sent after its commit and before the inbox is committed
   (``HubService.step``).

Only the kinds whose every read and write goes through the poll's connection (``ledger.hub.txn``) are applied
in it (:data:`BATCHED`); any other — a move, a number change, an erasure, a proxy approval, a roster, a
protection body's request, a witness's cosignature or relay, a query when the hub signs routing decisions
under its map's heads — closes the poll's transaction, is applied
alone as before, and a new one is opened for the rest: still the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, FlagLedgerError, StorageError
from ledger.faultpoint import faultpoint
from ledger.hub.heads import MapHeads
from ledger.hub.inbox import applied_among, park, was_applied
from ledger.hub.log import HubStore
from ledger.hub.openers import Item, Openers
from ledger.hub.sealed_records import records_among
from ledger.hub.sequencer import NotLeader
from ledger.linkage.consultation import AdviceMessage, StaffAnswer
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import AnswerMessage, FlagChangeMessage, QueryMessage, RecordMessage
from ledger.linkage.record_contents import SealedRecordMessage, StampedRecordMessage
from ledger.linkage.sealing import Opened
from ledger.linkage.transport import Delivery
from ledger.storage import storage_error

__all__ = ["BATCHED", "Hub", "Item", "Step", "apply_poll", "open_poll"]


@dataclass
class Step:
    """What one step of the hub's loop did."""

    standby: bool = False  # did not lead: handled nothing, committed nothing
    applied: int = 0
    replays: int = 0
    parked: int = 0
    sent: int = 0


class Hub(Protocol):
    """What a poll needs of the hub's loop (``HubService``)."""

    store: HubStore
    keys: PartyKeys
    directory: Directory
    now: Callable[[], datetime]
    heads: MapHeads | None
    openers: Openers

    def _apply(self, opened: Opened) -> None: ...


# applied inside the poll's transaction: everything they read and write is on its connection
BATCHED = frozenset(
    {
        "registration",
        FlagChangeMessage.kind,
        SealedRecordMessage.kind,
        StampedRecordMessage.kind,
        RecordMessage.kind,  # refused, parked
        QueryMessage.kind,  # unless the hub runs its flag map: see _alone
        AnswerMessage.kind,
        AdviceMessage.kind,  # read and written in its sequenced write alone
        StaffAnswer.kind,
    }
)


def open_poll(hub: Hub, deliveries: Sequence[Delivery]) -> list[Item]:
    """Every delivery opened and verified, in order (``ledger.hub.openers``: in worker processes if the poll is
    large), under the directory's keys valid now."""
    return hub.openers.open(hub.directory, hub.now(), deliveries)


def apply_poll(hub: Hub, items: list[Item], done: Step) -> None:
    """Apply ``items`` in order: runs of batched kinds each in one transaction, any other kind alone."""
    at = 0
    while at < len(items):
        if _alone(hub, items[at]):
            if _apply(hub, items[at], done):
                faultpoint("hub.applied")  # committed, owed messages unsent, the inbox not committed past it
            at += 1
            continue
        end = at
        while end < len(items) and not _alone(hub, items[end]):
            end += 1
        applied = _in_one_transaction(hub, items[at:end], done)
        for _ in range(applied):
            faultpoint("hub.applied")  # the poll committed, owed messages unsent, the inbox not committed past it
        at = end


def _alone(hub: Hub, item: Item) -> bool:
    if item.opened is None:
        return False  # parked in the poll's transaction
    if item.opened.kind == QueryMessage.kind and hub.heads is not None:
        return True  # its routing decision cites a head of the map signed on what is committed
    return item.opened.kind not in BATCHED


def _in_one_transaction(hub: Hub, items: list[Item], done: Step) -> int:
    applied = 0
    with hub.store.sequencer.poll() as poll:
        keys = {(i.opened.sender, i.opened.event_id) for i in items if i.opened is not None}
        try:
            found = applied_among(poll.conn, keys)
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's applied messages", exc) from exc
        poll.known.update({key: found.get(key) for key in keys})
        records = _record_ids(items)
        try:
            filed = records_among(poll.conn, records)
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's sealed provision records", exc) from exc
        poll.records.update({record_id: filed.get(record_id) for record_id in records})
        for item in items:
            if _apply(hub, item, done):
                applied += 1
                faultpoint("hub.poll.applied")  # applied in the poll's transaction, nothing of it committed
    return applied


def _record_ids(items: list[Item]) -> set[str]:
    """The record ids the poll's sealed provision records name, for one query: read from the JSON alone — a
    payload that is not what it should be is left to the message's own decoding, which parks it."""
    ids: set[str] = set()
    for item in items:
        if item.opened is None or item.opened.kind not in (SealedRecordMessage.kind, StampedRecordMessage.kind):
            continue
        try:
            record_id = json.loads(item.opened.payload).get("record_id")
        except (ValueError, RecursionError, AttributeError):
            continue
        if isinstance(record_id, str):
            ids.add(record_id)
    return ids


def _apply(hub: Hub, item: Item, done: Step) -> bool:
    """Apply one message, or park it with its reason; whether it was applied (not a replay, not parked)."""
    delivery, opened = item.delivery, item.opened
    try:
        if opened is None:
            assert item.refused is not None
            code, why = item.refused
            park(hub.store.engine, delivery, item.sender, item.event_id, code, why)
            done.parked += 1
            return False
        if was_applied(hub.store.engine, opened.sender, opened.event_id):
            done.replays += 1
            return False
        hub._apply(opened)
        done.applied += 1
        return True
    except (NotLeader, StorageError):
        raise  # not the message's fault: stop, commit nothing, handle it again later
    except FlagLedgerError as exc:
        park(hub.store.engine, delivery, item.sender, item.event_id, exc.code, str(exc))
        done.parked += 1
    except (ValueError, RecursionError) as exc:  # a decoder's own refusal of hostile bytes: parked all the same
        park(hub.store.engine, delivery, item.sender, item.event_id, Code.MALFORMED, f"{type(exc).__name__}: {exc}")
        done.parked += 1
    return False
