"""The hub's digest schedule on a real Kafka-protocol broker (Tansu): what the broker operator reads of it.

Threat: the broker operator, reading the raw records of every inbox topic with a plain client. B protects X;
C asks A about X; the hub ticks three times. Every inbox topic — the holder's, the provider's, the querier's,
and D's — holds exactly one record per tick, all of one size, though only A, B and C were sent
anything; the consultation still reaches B inside its digest.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.hub.digests import DigestSchedule
from ledger.hub.log import open_hub_store
from ledger.linkage.agency import Inbound
from ledger.linkage.messages import AnswerMessage, Consultation, RoutedQuery
from ledger.linkage.names import HUB
from ledger.linkage.transport import Topics
from tests.integration.test_linkage_kafka import raw_records
from tests.support.hub_world import A, B, C, Cast, D, World
from tests.support.people import individual_number
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka

TICKS = 3


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


def read(w: World, name: str, want: int, seconds: float = 20) -> list[Inbound]:
    got: list[Inbound] = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        got += w.inbox(name, timeout_ms=100)
    return got


def settle(w: World, seconds: float = 20) -> None:
    """Step the hub until it handled something and then a step found nothing (messages cross the broker)."""
    deadline, handled = time.monotonic() + seconds, False
    while time.monotonic() < deadline:
        step = w.hub.step(timeout_ms=200)
        if step.applied or step.parked:
            handled = True
        elif handled:
            return


def test_every_inbox_topic_holds_one_record_per_tick_of_one_size(bootstrap: str, tmp_path: Path) -> None:
    cfg = KafkaSettings(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(f"d{uuid.uuid4().hex[:8]}")
    parties = [A, B, C, D]
    ensure_inboxes(cfg, topics, [HUB, *parties])
    transports: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        transports.append(t := KafkaTransport(cfg, party, topics))
        return t

    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = World.open(Cast.of(A, B, C, D), store, open_transport)
    w.hub.digests = DigestSchedule()
    try:
        x = individual_number()
        w.agencies[B].flag(x, "NO_AUTO_RESPONSE", "set")
        w.agencies[A].file_person(x)
        w.agencies[C].query(x, A, "児童手当", 74, "地方税関係情報")
        settle(w)
        w.hub.tick()
        [routed] = [i.message for i in read(w, A, 1)]
        assert isinstance(routed, RoutedQuery) and routed.answer == "staff"
        [consult] = [i.message for i in read(w, B, 1)]
        assert isinstance(consult, Consultation)
        w.agencies[A].answer(routed.request_id, "in_progress")
        settle(w)
        w.hub.tick()
        [answer] = [i.message for i in read(w, C, 1)]
        assert isinstance(answer, AnswerMessage) and answer.status == "in_progress"
        w.hub.tick()

        seen = raw_records(bootstrap, [topics.inbox(p) for p in parties])
        sizes = {len(v) for p in parties for v in seen[topics.inbox(p)]}
        assert {p: len(seen[topics.inbox(p)]) for p in parties} == dict.fromkeys(parties, TICKS)
        assert len(sizes) == 1
    finally:
        for t in transports:
            t.close()
        store.close()
