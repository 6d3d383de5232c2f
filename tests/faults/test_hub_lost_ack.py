"""Lost acknowledgements on the hub topology (issue 19's fault suite), on a real broker (Tansu):

1. **Lost commit acknowledgements** at the hub and at every agency's inbox: the broker forgets every group's
   committed offset and every party restarts — each inbox is handed over again from its start. The hub drops
   what it applied by (sender, event id); each agency by its applied ids.
2. **An agency's bridge that died after the broker took its messages, before its database recorded them sent**
   (the send's acknowledgement lost to the node): its flag changes, registrations and queries are sent again by
   the next push (a new bridge, what its database says), and a provider's answers too. The same message is
   the same event (``AgencyEnd(resend_ids=True)``): the hub files, routes and relays it once.
3. **A query sent twice under two event ids** (an older bridge, or a peer agency): routed once, and the hub's
   loop goes on — it used to stop for good on the second copy (its insert refused, retried forever).

Each ends with the exactly-once and leak-freedom check (``hub_checks.exactly_once``).

Threats: the broker operator and the network (acknowledgements lost, messages redelivered), an administrator
restarting processes; a peer agency sending a query twice. A crash is no attacker, but the perpetrator's
query about a protected person must still never be answered automatically.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from consumers.linkage_staff import FILED
from ledger.app import Actor
from ledger.hub.log import open_hub_store
from ledger.hub.routing import holdings
from ledger.hub.tables import hub_requests
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.messages import QueryMessage
from ledger.linkage.transport import MemoryTransport
from ledger.runtime.linkage import code_of, party_keys
from ledger.runtime.tables import linkage_position, linkage_queries, linkage_registrations, linkage_routed
from tests.conftest import NodeFactory
from tests.faults.hub_checks import HubWork, exactly_once
from tests.faults.hub_kafka import drive, kafka_world
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with broker() as where:
        yield where


def test_lost_commit_acks_and_lost_send_records(address: str, make_node: NodeFactory, tmp_path: Path) -> None:
    """Broker operator / network, administrator restarting (see the module): 0 lost, 0 duplicated, no leak."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    world = kafka_world(address, make_node, store)
    w = world.w
    try:
        work = HubWork(random.Random(7))
        work.round(w, people=2)
        drive(w, lambda: work.done(w))

        # 1. every commit acknowledgement lost, every party restarted: everything handed over again
        world.forget_commits()
        world.reopen()
        replays = 0
        for _ in range(10):
            replays += w.hub.step(timeout_ms=100).replays
            for bridge in w.bridges.values():
                replays += bridge.pull(timeout_ms=100).replays
        assert replays >= 3 * len(work.asked), "the inboxes were not handed over again"
        exactly_once(w, store, work)

        # 2. the bridges push new work, then die before their database records it sent
        with w.nodes[B].engine.connect() as conn:
            b_position = conn.execute(select(linkage_position.c.position).where(linkage_position.c.name == "log"))
            before = int(b_position.scalar_one())
        work.round(w, people=2)
        for bridge in w.bridges.values():
            bridge.push()
        with w.nodes[B].engine.begin() as conn:  # B's flag changes: its log position as before the push
            conn.execute(update(linkage_position).where(linkage_position.c.name == "log").values(position=before))
        for code in (A, B, C):  # every registration: filed, not sent
            with w.nodes[code].engine.begin() as conn:
                conn.execute(update(linkage_registrations).values(sent=FILED))
        with w.nodes[C].engine.begin() as conn:  # C's queries: queued, not sent
            conn.execute(update(linkage_queries).where(linkage_queries.c.status == "sent").values(status="queued"))
        world.reopen()
        # A answers what the hub routed, then dies before recording its answers sent: they go again
        for _ in range(5):
            for bridge in w.bridges.values():
                bridge.push()
            w.hub.step(timeout_ms=100)
            w.bridges[A].pull(timeout_ms=100)
        w.bridges[A].push()
        with w.nodes[A].engine.begin() as conn:
            resent = conn.execute(update(linkage_routed).values(answered="")).rowcount
        assert resent == len(work.asked)
        world.reopen()
        drive(w, lambda: work.done(w))
        for _ in range(5):  # what was sent again reaches the hub and is dropped there, and at C
            w.hub.step(timeout_ms=100)
            w.bridges[C].pull(timeout_ms=100)
        exactly_once(w, store, work)
    finally:
        world.close()
        store.close()


def test_a_query_sent_twice_under_two_ids_is_routed_once(make_node: NodeFactory, tmp_path: Path) -> None:
    """Peer agency (or an older bridge) sending one query twice: routed once, the hub's loop goes on."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C))
    try:
        x = individual_number()
        w.bridges[A].file_person(x)
        asked = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        w.settle()
        # the same query again, under a fresh event id (an end without resend ids: what a bridge used to send)
        node = w.nodes[C]
        directory = w.bridges[C].directory
        again = AgencyEnd(party_keys(node), MemoryTransport(w.broker, C), directory, node.app.clock)
        again.send(QueryMessage(asked, code_of(node.app.subject(x)), A, PROCEDURE, ITEM, INFO))
        y = individual_number()
        set_flag(w.nodes[B], B, y, "NON_DISCLOSURE")  # behind it in the hub's inbox: must still be filed
        w.settle()
        with store.engine.connect() as conn:
            routed = conn.execute(select(func.count()).select_from(hub_requests)).scalar_one()
        assert routed == 1
        with w.nodes[A].engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(linkage_routed)).scalar_one() == 1
        code = code_of(w.nodes[B].app.subject(y))
        person = store.codes.person(B, code)
        assert person is not None and holdings(store.engine, store.codes, person) == {B: code}
    finally:
        w.close()
        store.close()
