"""The agency node's loop in hub mode on a digest schedule (``linkage.digests``, on by default): it pushes when a
tick is due and sends that tick's digest at once, and opens the hub's digests into the messages they carry.

Threats: the broker operator reading the hub's topic (a holder filing its flag, a provider filing its record:
each only one digest per tick, of one size, like a node that does nothing) and the administrator who switches
digests off (``FLAGLEDGER_DIGESTS_ENABLED=false``: each message as decided) or leaves the portal's entry out of
``linkage.portal`` (records then wait, with an alarm, and the loop keeps running).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.hub.digests import DigestSchedule
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.tables import hub_flag_changes, hub_sealed_records
from ledger.linkage.names import HUB
from ledger.linkage.sealing import read_header
from ledger.linkage.transport import MemoryTransport, Topics
from ledger.node.agency_loop import run_agency
from ledger.runtime.config import NodeConfig
from ledger.runtime.tables import linkage_routed
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number


@pytest.fixture
def world(make_node: NodeFactory, tmp_path: Path) -> Iterator[HubNodes]:
    store: HubStore = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C))
    w.hub.digests = DigestSchedule()
    yield w
    w.close()
    store.close()


def turn(world: HubNodes, code: str) -> None:
    """One turn of ``code``'s node loop (a tick is due at a loop's start), then the hub's step and tick."""
    turns = iter(range(1))
    run_agency(
        world.nodes[code],
        lambda: next(turns, None) is None,
        poll_timeout_ms=10,
        transport=MemoryTransport(world.broker, code),
    )
    world.hub.step(timeout_ms=20)
    world.hub.tick()


def hub_topic(world: HubNodes) -> list[tuple[str, int]]:
    return [(read_header(m).sender, len(m)) for m in world.broker.topics.get(Topics().inbox(HUB), [])]


def test_the_node_loop_sends_one_digest_per_tick_and_opens_the_hubs(world: HubNodes) -> None:
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    for _ in range(3):
        for code in (B, A, C):
            turn(world, code)
    # A's node opened the routed query out of the hub's digest: a request held for staff (B protects X)
    with world.nodes[A].engine.connect() as conn:
        assert len(conn.execute(select(linkage_routed)).all()) == 1
    with world.hub.store.engine.connect() as conn:
        assert [r.holder for r in conn.execute(select(hub_flag_changes))] == [B]
        # and A's record of the held request, sealed to the portal, inside a digest
        assert [r.provider for r in conn.execute(select(hub_sealed_records))] == [A]
    # the hub's topic: one digest per node per turn, all of one size, whatever the node did
    sent = hub_topic(world)
    assert sorted({s for s, _ in sent}) == [A, B, C]
    assert {s: sum(1 for t, _ in sent if t == s) for s in (A, B, C)} == dict.fromkeys((A, B, C), 3)
    assert len({size for _, size in sent}) == 1


def test_switched_off_each_message_goes_as_decided(world: HubNodes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGLEDGER_DIGESTS_ENABLED", "false")
    turn(world, B)
    turn(world, A)  # the first turns send each node's staff roster (the hub checks staff answers against it)
    before = len(hub_topic(world))
    set_flag(world.nodes[B], B, individual_number(), "NON_DISCLOSURE")
    turn(world, B)
    turn(world, A)  # nothing to send: nothing on the hub's topic from A
    assert [s for s, _ in hub_topic(world)][before:] == [B, B]  # the registration, then the flag change


def test_without_the_portals_entry_records_wait_and_the_loop_runs(
    world: HubNodes, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    config = NodeConfig.load(world.nodes[A].config.data_dir)
    portal = world.nodes[A].config.linkage.pop("portal")
    assert config.linkage["portal"] == portal  # only the open node's copy is changed
    caplog.set_level(logging.ERROR, "flagledger.node")
    monkeypatch.setattr("ledger.node.agency_loop.retry_delay", lambda failures: 0.0)
    for _ in range(3):
        for code in (B, A, C):  # A registered X before C's query is routed: A holds it, and records it
            turn(world, code)
    assert any("ALARM" in r.message and "portal" in r.message for r in caplog.records)
    with world.hub.store.engine.connect() as conn:
        assert conn.execute(select(hub_sealed_records)).all() == []
