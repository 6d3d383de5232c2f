"""Agency nodes in linkage hub mode on a real Kafka-protocol broker (Tansu): B's ``flagledger node`` loop (the
hub-mode loop it switches to) sends B's flag change to the hub's topic, and the seed runs through the hub —
C's query about X reaches A marked for staff and is held; C hears "in progress".

Threats: the perpetrator asking at C, a peer agency (A never learns B), the broker operator (the records on
the topics are sealed: no number, no code of the querier, no flag name). Tansu enforces no ACLs
(docs/linkage.md): each transport is assigned its own inbox only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_flag_changes
from ledger.linkage.names import HUB
from ledger.linkage.transport import Topics
from ledger.node.loop import NodeOptions, run
from ledger.runtime.tables import linkage_routed
from tests.conftest import NodeFactory
from tests.integration.test_linkage_kafka import raw_records
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


def drive(w: HubNodes, done: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        for bridge in w.bridges.values():
            bridge.push()
        w.hub.step(timeout_ms=100)
        for bridge in w.bridges.values():
            bridge.pull(timeout_ms=100)
    assert done()


def test_seed_through_the_hub_on_kafka(bootstrap: str, make_node: NodeFactory, tmp_path: Path) -> None:
    """Perpetrator at C, peer agency A, broker operator: see the module's docstring."""
    cfg = KafkaSettings(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(f"g{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, A, B, C])
    opened: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        opened.append(t := KafkaTransport(cfg, party, topics))
        return t

    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C), open_transport=open_transport)
    try:
        x = individual_number()
        set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
        # B's own node loop: in hub mode it runs the bridge on Kafka, no relay to a shared topic
        b = w.nodes[B]
        b.config.kafka = {"bootstrap_servers": bootstrap, "fetch_max_wait_ms": 10, "delivery_timeout_ms": 20000}
        b.config.linkage["topic_prefix"] = topics.prefix
        w.bridges.pop(B).transport.close()
        status = run(b, NodeOptions(seconds=3, projections="inline"))
        assert status["linkage"]["sent"] == 2 and status["linkage"]["registrations"] == 1  # roster, change
        w.bridge(B)

        def hub_has_the_flag() -> bool:
            with store.engine.connect() as conn:
                return [r.holder for r in conn.execute(select(hub_flag_changes))] == [B]

        drive(w, hub_has_the_flag)
        w.bridges[A].file_person(x)
        asked = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        drive(w, lambda: w.bridges[C].query(asked)["status"] == "in_progress")
        with w.nodes[A].engine.connect() as conn:
            (local,) = conn.execute(select(linkage_routed.c.local_request_id)).scalars()
        assert w.nodes[A].app.provision_request(UUID(local)).status == "held"
        assert [c["provider"] for c in w.bridges[B].consultations()] == [A]

        seen = raw_records(bootstrap, [topics.inbox(p) for p in (HUB, A, B, C)])
        assert seen[topics.inbox(HUB)] and seen[topics.inbox(A)]
        for records in seen.values():
            for value in records:
                for plain in (x.encode(), b"NON_DISCLOSURE", b"staff", C.encode() + b'"'):
                    assert plain not in value
    finally:
        for t in opened:
            t.close()
        w.close()
        store.close()


def test_a_handover_through_the_hub_on_kafka(bootstrap: str, make_node: NodeFactory, tmp_path: Path) -> None:
    """Insider at a non-holder, broker operator, on a real broker: A protects X and reports X's move to B; B is
    asked to take over under its own code and takes over; A hears that B holds; C, registered for X, gets no
    record in its inbox; no number, flag name or handover kind readable in any record."""
    from datetime import date

    cfg = KafkaSettings(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(f"g{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, A, B, C])
    opened: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        opened.append(t := KafkaTransport(cfg, party, topics))
        return t

    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C), open_transport=open_transport)
    try:
        x = individual_number()
        a, b = w.nodes[A].app, w.nodes[B].app
        set_flag(w.nodes[A], A, x, "NON_DISCLOSURE")
        w.bridges[B].file_person(x)
        w.bridges[C].file_person(x)
        assert a.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1)) is not None
        drive(w, lambda: len(b.handovers_for(B)) == 1)
        assert b.handovers_for(B)[0]["flags_to_take_over"] == ["NON_DISCLOSURE"]
        set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
        drive(w, lambda: B in a.holders_anywhere(a.subject(x)).get("NON_DISCLOSURE", []))

        seen = raw_records(bootstrap, [topics.inbox(p) for p in (HUB, A, B, C)])
        assert seen[topics.inbox(A)] and seen[topics.inbox(B)] and not seen[topics.inbox(C)]
        for records in seen.values():
            for value in records:
                for plain in (x.encode(), b"NON_DISCLOSURE", b"handover", b"handed_over", b"move"):
                    assert plain not in value
    finally:
        for t in opened:
            t.close()
        w.close()
        store.close()
