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

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, ConfigurationError, PermissionDenied
from ledger.hub.inbox import paid
from ledger.hub.tables import hub_outbox
from ledger.linkage.buckets import BUCKETS
from ledger.linkage.digests import DIGEST_SIZE, seal_digest, unpack
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB
from ledger.linkage.sealing import Opened, read_header
from ledger.linkage.transport import Delivery, Transport
from ledger.storage import storage_error

__all__ = ["DigestSchedule", "carried", "send_digests"]


@dataclass
class DigestSchedule:
    """A tick every ``every`` seconds (``HubService.run`` ticks when it is due; tests call ``tick`` themselves),
    each digest ``size`` bytes (a bucket)."""

    every: float = 1.0
    size: int = DIGEST_SIZE
    clock: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0.01 <= self.every <= 3600:
            raise ConfigurationError(f"a digest tick comes every 0.01 to 3600 seconds, not {self.every}")
        if self.size not in BUCKETS:
            raise ConfigurationError(f"a digest's size must be a bucket {BUCKETS}, not {self.size}")

    def due(self) -> bool:
        now = self.clock()
        return self._last is None or now - self._last >= self.every

    def ticked(self) -> None:
        self._last = self.clock()


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
