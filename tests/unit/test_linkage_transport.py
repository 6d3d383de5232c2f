"""The linkage transport in memory (the embedded demo's): the same story the Kafka transport tells
(tests/integration/test_linkage_kafka.py). Threats: a peer agency reading another agency's inbox or writing
to it; a crash between poll and commit losing a message."""

from __future__ import annotations

import pytest

from ledger.errors import Code, InputError, PermissionDenied
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics, check_route
from tests.support.linkage import Party, story

A, B = "131016", "131024"


def test_the_memory_transport_delivers_each_inbox_its_own_bytes_at_least_once() -> None:
    broker = MemoryBroker()
    topics = Topics("t")
    sent = story(lambda party: MemoryTransport(broker, party, topics), Party(A), Party(B), Party(HUB))
    assert len(sent) == 4
    assert set(broker.topics) == {"t.hub", f"t.inbox.{A}", f"t.inbox.{B}"}
    assert sorted(broker.topics["t.hub"]) == sorted(sent[:2])
    assert broker.topics[f"t.inbox.{A}"] == [sent[2]] and broker.topics[f"t.inbox.{B}"] == [sent[3]]


def test_routes_are_a_star_around_the_hub() -> None:
    """Threat: a peer agency (or the portal) writing straight into another agency's inbox."""
    check_route(A, HUB)
    check_route(PORTAL, HUB)
    check_route(HUB, A)
    check_route(HUB, PORTAL)
    for sender, recipient in ((A, B), (A, PORTAL), (PORTAL, A), (HUB, HUB), (A, A)):
        with pytest.raises(PermissionDenied) as refused:
            check_route(sender, recipient)
        assert refused.value.code == Code.WRONG_ROUTE
    with pytest.raises(InputError):
        check_route("a.b", HUB)
    with pytest.raises(InputError):
        Topics().inbox("../hub")
    assert Topics().inbox(HUB) == "flagledger.linkage.hub"
    assert Topics().inbox("SC-TOKYO") == "flagledger.linkage.inbox.SC-TOKYO"
