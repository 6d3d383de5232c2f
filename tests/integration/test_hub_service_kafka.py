"""The hub's message loop on a real Kafka-protocol broker (Tansu): the seed scenario end to end, and what the
broker operator sees of it.

Threats: the perpetrator behind C's counter (C hears what any manual answer says), a peer agency (A, the
provider, is told "staff answer" with no holder), the broker operator (every record on every topic is a sealed
message of a bucket's size; the hub's messages to agencies are all one size). Tansu enforces no ACLs: each
party's consumer is assigned its own inbox only (docs/linkage.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.hub.log import open_hub_store
from ledger.linkage.agency import Inbound
from ledger.linkage.buckets import ANSWER_SIZE, BUCKETS
from ledger.linkage.messages import AnswerMessage, Consultation, RoutedQuery
from ledger.linkage.names import HUB
from ledger.linkage.sealing import read_header
from ledger.linkage.transport import Topics
from tests.integration.test_linkage_kafka import raw_records
from tests.support.hub_world import A, B, C, Cast, D, World
from tests.support.people import individual_number
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


def until(w: World, name: str, want: int, seconds: float = 20) -> list[Inbound]:
    """Step the hub and read ``name``'s inbox until ``want`` messages came (or time is up)."""
    got: list[Inbound] = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        w.hub.step(timeout_ms=100)
        got += w.inbox(name, timeout_ms=100)
    return got


def test_seed_on_kafka(bootstrap: str, tmp_path: Path) -> None:
    cfg = KafkaSettings(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(f"h{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, A, B, C, D])
    transports: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        transports.append(t := KafkaTransport(cfg, party, topics))
        return t

    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = World.open(Cast.of(A, B, C, D), store, open_transport)
    try:
        x = individual_number()
        w.agencies[B].flag(x, "NO_AUTO_RESPONSE", "set")
        w.agencies[A].file_person(x)
        mine = w.agencies[C].query(x, A, "児童手当", 74, "地方税関係情報")
        [routed] = [i.message for i in until(w, A, 1)]
        assert isinstance(routed, RoutedQuery) and routed.answer == "staff" and B not in str(routed)
        [consult] = [i.message for i in until(w, B, 1)]
        assert isinstance(consult, Consultation) and consult.request_id == routed.request_id
        assert C not in str(consult)
        w.agencies[A].answer(routed.request_id, "in_progress")
        assert [i.message for i in until(w, C, 1)] == [AnswerMessage(mine, "in_progress", "")]
        assert w.inbox(D, timeout_ms=300) == []

        # the broker operator's view: sealed, bucket-sized records; the hub's to agencies all one size
        seen = raw_records(bootstrap, [topics.inbox(p) for p in (HUB, A, B, C, D)])
        assert len(seen[topics.inbox(HUB)]) == 6 and not seen[topics.inbox(D)]
        for topic, records in seen.items():
            for value in records:
                header = read_header(value)
                assert topic == topics.inbox(header.recipient)
                inner = len(value) - (12 + len(header.sender) + len(header.recipient) + 32 + 32 + 16)
                assert inner in BUCKETS and (header.sender != HUB or inner == ANSWER_SIZE)
                for plain in (x.encode(), "児童手当".encode(), b"staff", b"NO_AUTO_RESPONSE"):
                    assert plain not in value
    finally:
        for t in transports:
            t.close()
        store.close()
