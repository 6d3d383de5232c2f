"""The agency bridge hands a push's registrations and acts to the broker together and flushes once (issue #23,
docs/performance.md: propagation), so the hub files a person's registration and the flag change that needs it in
one step. What it records as sent it records only after that flush: a broker that fails the flush leaves
everything to be sent again, and the hub files each once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from consumers.linkage_staff import KEPT, SENT
from ledger.errors import BrokerUnavailable
from ledger.hub.heads import MapHeads
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_flag_changes
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Transport
from ledger.runtime.tables import linkage_registrations
from tests.conftest import NodeFactory
from tests.support.hub_nodes import HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B
from tests.support.people import individual_number


class FailingFlush(MemoryTransport):
    """A broker that takes the messages but fails to confirm them, once (the send's outcome unknown)."""

    fail = False

    def flush(self) -> None:
        if self.fail:
            self.fail = False
            raise BrokerUnavailable("the broker did not confirm")


@pytest.fixture
def world(make_node: NodeFactory, tmp_path: Path) -> Iterator[HubNodes]:
    broker = MemoryBroker()

    def open_transport(party: str) -> Transport:
        return FailingFlush(broker, party) if party == B else MemoryTransport(broker, party)

    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B), open_transport=open_transport, heads=MapHeads)
    w.settle()  # rosters and first heads
    yield w
    w.close()
    store.close()


def _registration_state(w: HubNodes) -> list[int]:
    with w.nodes[B].engine.connect() as conn:
        return [int(s) for s in conn.execute(select(linkage_registrations.c.sent)).scalars()]


def _filed(w: HubNodes) -> int:
    with w.hub.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(hub_flag_changes)).scalar_one())


def test_a_failed_flush_records_nothing_sent_and_the_hub_files_the_flag_once(world: HubNodes) -> None:
    """Broker operator / network: B's flag on a person first typed there goes out with the person's registration
    in one flush; the broker fails to confirm it, so B records neither as sent and sends both again — the hub,
    which got both the first time too, files the flag once and drops the copies (no flag lost, none doubled)."""
    w, bridge = world, world.bridges[B]
    set_flag(w.nodes[B], B, individual_number(), "NO_AUTO_RESPONSE")
    assert _registration_state(w) == [KEPT]  # kept until an act needs it: this flag
    transport = bridge.transport
    assert isinstance(transport, FailingFlush)
    transport.fail = True
    with pytest.raises(BrokerUnavailable):
        bridge.push()
    assert _registration_state(w) == [KEPT]  # not recorded sent: its flush never returned

    step = w.hub.step(timeout_ms=20)
    assert (step.applied, step.parked) == (2, 0)  # the registration and the flag change in one step
    assert _filed(w) == 1

    again = bridge.push()
    assert (again.registrations, again.acts) == (1, ["flag_change"])
    assert _registration_state(w) == [SENT]
    step = w.hub.step(timeout_ms=20)
    assert (step.applied, step.replays, step.parked) == (0, 2, 0)
    assert _filed(w) == 1
    assert bridge.push().acts == []  # recorded sent now: nothing goes out a third time


def test_a_flag_executed_while_the_bridge_waits_on_the_hub_ends_the_wait(world: HubNodes) -> None:
    """The perpetrator: until A's node holds the hub's head with B's new flag, A may still answer about the person
    by itself — so a flag executed while B's loop waits on its inbox must not wait out the whole poll before it is
    sent. The wait is cut into slices; a commit to B's log ends it, and the next push sends the flag."""
    w, bridge, node = world, world.bridges[B], world.nodes[B]
    seen, asked = node.app.max_position(), list[int]()

    def wake() -> bool:
        if not asked:  # the staff execute a flag while the loop waits on the hub
            set_flag(node, B, individual_number(), "NO_AUTO_RESPONSE")
        asked.append(node.app.max_position())
        return node.app.max_position() != seen

    pulled = bridge.pull(timeout_ms=60_000, wake=wake)
    assert (pulled.applied, len(asked)) == ([], 1)  # ended at the first slice after the commit, nothing applied
    assert bridge.push().acts == ["flag_change"]
    step = w.hub.step(timeout_ms=20)
    assert (step.applied, step.parked) == (2, 0)
    assert _filed(w) == 1
