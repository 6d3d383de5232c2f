"""Three agency nodes in hub mode and the hub's loop on a real Kafka-protocol broker (Tansu), in this process:
the world of ``tests.support.hub_nodes`` with every party on its own :class:`KafkaTransport` and inbox topics
of this test's own prefix."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.hub.log import HubStore
from ledger.linkage.names import HUB
from ledger.linkage.transport import Topics
from tests.conftest import NodeFactory
from tests.support.hub_nodes import HubNodes, hub_nodes
from tests.support.hub_world import A, B, C

__all__ = ["kafka_world", "settings"]


def settings(address: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)


def kafka_world(
    address: str, make_node: NodeFactory, store: HubStore, prefix: str | None = None
) -> tuple[HubNodes, Callable[[], None]]:
    """The world and a function that closes its transports and nodes."""
    cfg = settings(address)
    topics = Topics(prefix or f"h{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, A, B, C])
    opened: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        opened.append(t := KafkaTransport(cfg, party, topics))
        return t

    w = hub_nodes(make_node, store, (A, B, C), open_transport=open_transport)

    def close() -> None:
        for t in opened:
            t.close()
        w.close()

    return w, close
