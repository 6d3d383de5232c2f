"""One way to move sealed messages between the linkage's parties, and the in-memory implementation.

A :class:`Transport` is opened *for one party* (an agency code, ``hub`` or ``portal``): it sends to a
recipient's inbox and reads its own inbox only. Routes are a star: an agency or the portal sends only to the
hub (:func:`check_route`); the hub sends to anyone. The bytes are opaque here (sealed by
ledger.linkage.sealing) and both implementations carry them unchanged: :class:`MemoryTransport` for the
embedded demo (hub, portal and agencies in one process, nothing else shared) and
``consumers.kafka_transport.KafkaTransport`` (one topic per inbox).

Commit semantics, the same on both: :meth:`Transport.poll` returns the next messages of the inbox in order;
:meth:`Transport.commit` marks everything polled so far as done. Whatever was polled but not committed is
delivered again to the next transport opened for the party (at least once; the receiver drops what it already
applied, by event id). A receiver commits only after its own database commit; when it fails before (its database
went away, it lost the hub's lease) it calls :meth:`Transport.rewind`, so that its next poll hands the same
messages over again instead of going on after them — a later commit would otherwise pass messages never applied.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ledger.errors import Code, PermissionDenied
from ledger.linkage.names import HUB, check_party

__all__ = ["Delivery", "MemoryBroker", "MemoryTransport", "Topics", "Transport", "check_route"]


@dataclass(frozen=True)
class Delivery:
    """One message read from an inbox: where it was (topic, partition, offset) and its bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class Topics:
    """Inbox topic names: ``PREFIX.hub`` for the hub, ``PREFIX.inbox.PARTY`` for an agency or the portal. One
    topic per party, so a broker ACL can give each agency read on its own inbox and write on the hub's."""

    prefix: str = "flagledger.linkage"

    def inbox(self, party: str) -> str:
        party = check_party(party)
        return f"{self.prefix}.hub" if party == HUB else f"{self.prefix}.inbox.{party}"


def check_route(sender: str, recipient: str) -> None:
    """Agencies and the portal write only to the hub; the hub writes to anyone but itself."""
    check_party(sender, "sender")
    check_party(recipient, "recipient")
    if sender == recipient:
        raise PermissionDenied(f"{sender} cannot send to itself", code=Code.WRONG_ROUTE)
    if sender != HUB and recipient != HUB:
        raise PermissionDenied(f"{sender} may send only to the hub, not to {recipient}", code=Code.WRONG_ROUTE)


class Transport(Protocol):
    """A party's end of the linkage: send to a recipient's inbox, read its own."""

    party: str
    inbox: str  # the one topic this party reads

    def send(self, recipient: str, message: bytes) -> None:
        """Queue ``message`` for ``recipient``'s inbox (:func:`check_route` first); :meth:`flush` waits for it."""
        ...

    def flush(self) -> None:
        """Return once everything sent is stored by the broker; BrokerUnavailable if it cannot be."""
        ...

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        """The next messages of this party's inbox (waiting up to ``timeout_ms`` for the first)."""
        ...

    def commit(self) -> None:
        """Everything polled so far is done: not delivered again to this party."""
        ...

    def rewind(self) -> None:
        """Everything polled since the last commit is not done: the next poll returns it again."""
        ...

    def close(self) -> None: ...


@dataclass
class MemoryBroker:
    """Topics as lists of messages and each party's committed position, in one process."""

    topics: dict[str, list[bytes]] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def append(self, topic: str, message: bytes) -> None:
        with self._changed:
            self.topics.setdefault(topic, []).append(bytes(message))
            self._changed.notify_all()

    def size(self, topic: str) -> int:
        with self._changed:
            return len(self.topics.get(topic, ()))

    def read(self, topic: str, start: int, limit: int, timeout_s: float) -> list[bytes]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.topics.get(topic, ())) > start, timeout=timeout_s)
            return list(self.topics.get(topic, [])[start : start + limit])


class MemoryTransport:
    """A party's end on a :class:`MemoryBroker`; resumes from the party's committed position when opened."""

    def __init__(self, broker: MemoryBroker, party: str, topics: Topics | None = None) -> None:
        self.broker = broker
        self.party = check_party(party)
        self.topics = topics or Topics()
        self.inbox = self.topics.inbox(party)
        self._position = broker.committed.get(self.inbox, 0)
        self._committed = self._position

    def send(self, recipient: str, message: bytes) -> None:
        check_route(self.party, recipient)
        self.broker.append(self.topics.inbox(recipient), message)

    def flush(self) -> None:
        return None  # appended at send

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        values = self.broker.read(self.inbox, self._position, max_records, timeout_ms / 1000)
        start, self._position = self._position, self._position + len(values)
        return [Delivery(self.inbox, 0, start + i, v) for i, v in enumerate(values)]

    def commit(self) -> None:
        self.broker.committed[self.inbox] = self._committed = self._position

    def rewind(self) -> None:
        self._position = self._committed

    def lag(self) -> int:
        """Messages in the inbox not yet read (the metrics' inbox depth)."""
        return max(0, self.broker.size(self.inbox) - self._position)

    def close(self) -> None:
        return None


if TYPE_CHECKING:  # mypy --strict holds the in-memory transport to the interface
    _MEMORY: type[Transport] = MemoryTransport
