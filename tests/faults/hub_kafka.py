"""Three agency nodes in hub mode and the hub's loop on a real Kafka-protocol broker (Tansu), in this process:
the world of ``tests.support.hub_nodes`` with every party on its own :class:`KafkaTransport` and inbox topics
of this test's own prefix. A "restart" of a party is its transport closed and a new one opened: it resumes from
its group's committed offsets and from what its database holds, nothing else."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.errors import BrokerUnavailable, StorageError
from ledger.hub.log import HubStore
from ledger.linkage.names import HUB
from ledger.linkage.transport import Topics
from tests.conftest import NodeFactory
from tests.support.hub_nodes import HubNodes, hub_nodes
from tests.support.hub_world import A, B, C

__all__ = ["KafkaHub", "drive", "kafka_world", "settings"]

PARTIES = (HUB, A, B, C)


def settings(address: str) -> KafkaSettings:
    # a lost inbox noticed within a second (30 s in production)
    return KafkaSettings(
        bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=8000, loss_check_seconds=1
    )


@dataclass
class KafkaHub:
    address: str
    topics: Topics
    w: HubNodes
    opened: list[KafkaTransport] = field(default_factory=list)

    def open_transport(self, party: str) -> KafkaTransport:
        self.opened.append(t := KafkaTransport(settings(self.address), party, self.topics))
        return t

    def reopen(self) -> None:
        """Every party restarted: the hub's loop and each agency's bridge on a new transport."""
        self.w.hub.transport.close()
        self.w.hub.transport = self.open_transport(HUB)
        for code in list(self.w.bridges):
            self.w.bridges[code].transport.close()
            self.w.bridge(code)

    def forget_commits(self) -> None:
        """The broker lost every commit acknowledgement: each party's group offsets set back to the start of its
        inbox (call :meth:`reopen` after, as processes that restarted)."""
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata

        for party in PARTIES:
            consumer = KafkaConsumer(
                group_id=f"{self.topics.prefix}.{party}", enable_auto_commit=False, bootstrap_servers=self.address
            )
            try:
                tp = TopicPartition(self.topics.inbox(party), 0)
                consumer.assign([tp])
                consumer.commit({tp: OffsetAndMetadata(0, "", -1)})
            finally:
                consumer.close(autocommit=False)

    def close(self) -> None:
        for t in self.opened:
            t.close()
        self.w.close()


def kafka_world(address: str, make_node: NodeFactory, store: HubStore) -> KafkaHub:
    topics = Topics(f"h{uuid.uuid4().hex[:8]}")
    ensure_inboxes(settings(address), topics, list(PARTIES))
    made = KafkaHub(address, topics, None)  # type: ignore[arg-type]  # the world is made with its transports
    opener: Callable[[str], KafkaTransport] = made.open_transport
    made.w = hub_nodes(make_node, store, (A, B, C), open_transport=opener)
    return made


def drive(w: HubNodes, done: Callable[[], bool], seconds: float = 60, max_records: int = 100) -> int:
    """Turn every party's loop as ``flagledger node`` does — a database or broker failure at the hub is retried
    at its next step — until ``done``; returns how many steps failed. ``max_records``: the hub's batch."""
    failed = 0
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        try:  # an agency's loop retries a push or pull that failed for the broker or its database, as the hub's
            for bridge in w.bridges.values():
                bridge.push()
        except (StorageError, BrokerUnavailable):
            failed += 1
        try:
            w.hub.step(timeout_ms=50, max_records=max_records)
        except (StorageError, BrokerUnavailable):
            failed += 1
        try:
            for bridge in w.bridges.values():
                bridge.pull(timeout_ms=50)
        except (StorageError, BrokerUnavailable):
            failed += 1
    assert done(), "the parties did not finish: a message was lost or the loop is stuck"
    return failed
