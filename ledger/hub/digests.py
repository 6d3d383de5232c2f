"""The hub's digest schedule: every tick, one fixed-size sealed digest to every party's inbox.

On a schedule (:class:`DigestSchedule` given to ``HubService``) the loop sends nothing to an inbox as it
decides: what a decision owes stays in the outbox (``hub_outbox``, written in the decision's transaction), and
each tick (:func:`send_digests`) packs every party's owed messages, oldest first, into one digest of the
schedule's size — empty if nothing is owed, the rest left for the next tick if they do not fit — sends one
digest to every party the directory knows, and then deletes what was sent from the outbox. A hub that dies
between the send and the delete sends those messages again in the next digest; the recipient drops them by
their event ids, as it drops any resent message. Format and reasons: ``ledger.linkage.digests``.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, PermissionDenied
from ledger.hub.inbox import paid
from ledger.hub.tables import hub_outbox
from ledger.linkage.digests import seal_digest, unpack
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB
from ledger.linkage.schedule import DigestSchedule  # where it was first: the hub's loop takes one
from ledger.linkage.sealing import Opened, read_header
from ledger.linkage.transport import Delivery, Transport
from ledger.storage import storage_error

__all__ = ["DigestSchedule", "carried", "send_digests"]


def _owed_by_recipient(engine: Engine) -> dict[str, list[tuple[int, bytes]]]:
    o = hub_outbox.c
    by: dict[str, list[tuple[int, bytes]]] = {}
    try:
        with engine.connect() as conn:
            for i, recipient, message in conn.execute(select(o.id, o.recipient, o.message).order_by(o.id)):
                by.setdefault(str(recipient), []).append((int(i), bytes(message)))
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's outbox", exc) from exc
    return by


def send_digests(engine: Engine, transport: Transport, keys: PartyKeys, directory: Directory, size: int) -> int:
    """One tick: a digest to every party but the hub, each ``size`` bytes; returns how many were sent."""
    owed = _owed_by_recipient(engine)
    sent_ids: list[int] = []
    parties = sorted(p for p in directory.sealing if p != HUB)
    for party in parties:
        mine = owed.get(party, [])
        digest, taken = seal_digest(keys.signer, directory.sealing_key(party), party, [m for _, m in mine], size)
        transport.send(party, digest)
        sent_ids += [i for i, _ in mine[:taken]]
    transport.flush()
    if sent_ids:
        paid(engine, sent_ids)
    return len(parties)


def carried(delivery: Delivery, opened: Opened) -> list[Delivery]:
    """The messages an agency's digest carries, each as a delivery at the digest's place, to be handled as if it
    had come alone (its own seal, signature, applied id). An agency batches only its own: a message naming
    another sender refuses the whole digest (``wrong_agency``)."""
    inner = unpack(opened.payload)
    for message in inner:
        if read_header(message).sender != opened.sender:
            raise PermissionDenied(f"a digest from {opened.sender} carries another's message", code=Code.WRONG_AGENCY)
    return [replace(delivery, value=message) for message in inner]
