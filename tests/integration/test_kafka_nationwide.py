"""Two agency nodes joined through a real Kafka-protocol broker (Tansu): a flag set at B protects at A,
a poison message is parked without blocking its partition, and redelivery applies nothing twice."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.broker import wait_for
from consumers.inbox import Consumer
from consumers.outbox import Relay
from consumers.parked import parked, replay_parked
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.support.tansu import broker
from tests.support.trust import trust

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


def settings(address: str, group: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=address,
        topic=f"events-{group}",
        dead_letter_topic=f"dlq-{group}",
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10000,
        fetch_max_wait_ms=10,
    )


@pytest.fixture
def pair(make_node, tmp_path: Path) -> tuple[Node, Node]:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b, B, "B市")
    return a, b


def test_a_flag_set_at_b_reaches_a_over_the_broker_and_poison_is_parked(bootstrap: str, pair, person) -> None:
    a, b = pair
    cfg = settings(bootstrap, f"g{uuid.uuid4().hex[:8]}")
    x = person()
    rid = b.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    relay = Relay(b, cfg)
    consumer = Consumer(a, cfg)
    try:
        assert relay.run_once() > 0
        from kafka import KafkaProducer

        junk = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        junk.send(cfg.topic, key=B.encode(), value=b"not an envelope")
        junk.flush()
        junk.close()
        protected = lambda: bool(a.app.flag_state and a.app.flag_state.flags_for(a.app.subject(x)))  # noqa: E731
        ok = wait_for(lambda: consumer.poll_once(1000) >= 0 and protected() and bool(parked(a)), 30)
        assert ok, (consumer.counts, parked(a))
        answer = a.app.request_provision(
            Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        assert answer.status == "in_progress"
        [poison] = parked(a)
        assert poison["code"] == "malformed" and "envelope" in poison["reason"]
        assert replay_parked(a, poison["id"]).kind == "parked"  # still poison: stays parked
        before = a.app.max_position()
        relay.reset(0)  # the broker lost nothing, but an operator republishes everything
        assert relay.run_once() > 0
        wait_for(lambda: consumer.poll_once(1000) >= 0 and consumer.counts.get("duplicate", 0) > 0, 20)
        assert a.app.max_position() == before, "redelivered events must not be applied twice"
    finally:
        relay.close()
        consumer.close()
