"""The relay's position passes events that are not its to publish, so a node that mostly ingests other agencies'
events does not re-read them on every round; its own events are still all published, once."""

from __future__ import annotations

import uuid

import pytest

from consumers.outbox import Relay, publishable
from ledger.app import Actor
from tests.conftest import A, B
from tests.integration.test_ingest import pair, ship  # noqa: F401 - the two-node fixture
from tests.integration.test_kafka_nationwide import settings
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("backend", [None])
def test_relay_position_passes_remote_events_and_publishes_own_ones(pair, person) -> None:  # noqa: F811
    a, b = pair
    with broker() as address:
        relay = Relay(a, settings(address, f"g{uuid.uuid4().hex[:8]}"))
        try:
            relay.run_once()
            own = a.app.max_position()
            for _ in range(3):
                rid = b.app.request_flags(Actor(B, "req"), person(), ["NO_AUTO_RESPONSE"])
                b.app.approve_request(Actor(B, "apr"), rid)
                b.app.execute_request(Actor(B, "op"), rid)
            ship(b, a)  # B's events are now in A's log, after A's own
            assert a.app.max_position() > own
            assert relay.run_once() == 0, "B's events are B's to publish"
            assert relay.position() == a.app.max_position(), "the position passes what was scanned"
            a.app.request_provision(
                Actor(A, "counter"), A, person(), legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
            )
            expected = len(list(publishable(a.app, relay.position())))
            assert expected > 0
            assert relay.run_once() == expected, "A's own new events are published"
            assert relay.position() == a.app.max_position()
            assert relay.run_once() == 0, "nothing twice"
        finally:
            relay.close()
