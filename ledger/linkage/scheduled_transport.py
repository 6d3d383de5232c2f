"""A party's transport on a digest schedule, both ways: what it sends the hub goes out only in digests, one per
tick, and the digests the hub sends it are opened into the messages they carry.

An agency node's bridge and the portal send through it as through any transport; the loop calls
:meth:`ScheduledTransport.tick` when its :class:`~ledger.linkage.schedule.DigestSchedule` is due. A tick seals
what waits (oldest first) into digests of the schedule's size and sends them: one digest, empty if nothing
waits — so the hub's topic shows this party like every other, whatever it does. What does not fit one digest
goes in further digests of the same size in the same tick rather than waiting in memory: a caller marks what
it handed over as sent, so nothing may stay here past a tick (the extra digests show that the party sent more
than a digest's worth that tick, and nothing about what). The caller ticks right after handing over what it
marks sent (the agency node: after each push).

:meth:`poll` returns each digest's messages as deliveries at the digest's place (``ledger.linkage.digests.expand``:
the digest opened and checked to be the hub's); a delivery that does not open is passed on as it came, for the
reader to refuse and park as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from ledger.errors import FlagLedgerError
from ledger.linkage.digests import expand, room, seal_digest
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB
from ledger.linkage.transport import Delivery, Transport

__all__ = ["ScheduledTransport"]


class ScheduledTransport:
    def __init__(
        self, inner: Transport, keys: PartyKeys, directory: Directory, now: Callable[[], datetime], size: int
    ) -> None:
        room(size, keys.signer.key_id)  # a bucket, or ConfigurationError
        self.inner = inner
        self.party = inner.party
        self.inbox = inner.inbox
        self.keys = keys
        self.directory = directory
        self.now = now
        self.size = size
        self.waiting: list[bytes] = []

    def send(self, recipient: str, message: bytes) -> None:
        if recipient != HUB:
            self.inner.send(recipient, message)  # a party sends only to the hub: the inner transport refuses
            return
        self.waiting.append(message)

    def flush(self) -> None:
        self.inner.flush()

    def tick(self) -> int:
        """One tick: what waits, in digests of the schedule's size (one at least); returns the messages sent."""
        hub = self.directory.sealing_key(HUB)
        sent = 0
        while True:
            digest, taken = seal_digest(self.keys.signer, hub, HUB, self.waiting[sent:], self.size)
            self.inner.send(HUB, digest)
            sent += taken
            if sent >= len(self.waiting):
                break
        self.inner.flush()
        del self.waiting[:sent]  # after the broker took them, as an unscheduled send
        return sent

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        out: list[Delivery] = []
        keys = self.directory.sender_keys(self.now())
        for delivery in self.inner.poll(timeout_ms, max_records):
            try:
                carried = expand(self.keys, delivery.value, keys)
            except FlagLedgerError:
                carried = [delivery.value]  # the reader opens it again, refuses it and parks it
            out += [replace(delivery, value=value) for value in carried]
        return out

    def commit(self) -> None:
        self.inner.commit()

    def rewind(self) -> None:
        self.inner.rewind()

    def close(self) -> None:
        self.inner.close()
