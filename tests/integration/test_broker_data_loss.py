"""The broker loses the events topic (deleted and recreated, a memory broker restarted, a cluster rebuilt) while a
consumer still holds its positions in the old log, and the relays republish into the new one.

Threat: the broker operator and the network (routing only, and not trusted to keep what it stored). A flag B sets
that A never applies is a leak: A's counter keeps answering automatically about a person B protects.

A fetch past the end of the new log answers nothing (Tansu: no OFFSET_OUT_OF_RANGE, so ``auto_offset_reset``
never fires); once the republished log grows past the old position the consumer reads on from there, skipping
everything below it, and commits. Here the topic is deleted and recreated under a living consumer group, so nothing
else (no rejoin) brings the consumer back: without the fix B's new flag never reaches A.
"""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path

import pytest

from consumers.broker import ensure_topics
from consumers.inbox import Consumer
from consumers.outbox import Relay, publishable
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.support.tansu import broker
from tests.support.trust import trust

pytestmark = pytest.mark.kafka


def _settings(address: str) -> KafkaSettings:
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=address,
        topic=f"events-{tag}",
        dead_letter_topic=f"dlq-{tag}",
        group_id=f"g-{tag}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10000,
        fetch_max_wait_ms=10,
        delivery_timeout_ms=8000,
        loss_check_seconds=2,  # how often the consumer asks whether the topic is still the one it read
    )


def _recreate(cfg: KafkaSettings) -> None:
    """The operator deletes the events topic and creates it again: everything it held is gone."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**cfg.client_options())
    try:
        admin.delete_topics([cfg.topic])
    finally:
        admin.close()
    deadline = time.monotonic() + 10
    while cfg.topic not in ensure_topics(cfg):  # created again once the deletion is through
        assert time.monotonic() < deadline, "the topic was not deleted"
        time.sleep(0.2)


def _protect(b: Node, x: str) -> None:
    rid = b.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)


def _missing_at_a(a: Node, b: Node) -> set[str]:
    want = {Envelope.from_bytes(raw).header.event_id for _, _, raw in publishable(b.app)}
    have = {env.header.event_id for _, _, env in a.app.envelopes() if env.header.origin == B}
    return want - have


def _poll_until_complete(consumer: Consumer, a: Node, b: Node, seconds: float) -> set[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _missing_at_a(a, b):
        consumer.poll_once(300)
    return _missing_at_a(a, b)


def test_a_consumer_left_past_the_end_of_a_recreated_topic_rereads_it_and_misses_no_flag(
    make_node, tmp_path: Path, person
) -> None:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b, B, "B市")
    trust(b, a, A, "A市")
    with broker() as address:
        cfg = _settings(address)
        relay_a, relay_b = Relay(a, cfg), Relay(b, cfg)
        consumer = Consumer(a, cfg)
        try:
            assert relay_a.run_once() > 0  # A's own events first in the old log: A's position counts them
            _protect(b, person())
            assert relay_b.run_once() > 0
            assert not _poll_until_complete(consumer, a, b, 60), "A never caught up before the loss"
            _recreate(cfg)
            x = person()
            _protect(b, x)  # a flag A has never seen: after the loss it exists only in the new log
            for relay in (relay_b, relay_a):  # each notices the loss and republishes, B's events first
                relay._next_check = 0.0
                relay.run_once()
                assert relay.republished_after_loss == 1
            missing = _poll_until_complete(consumer, a, b, 15)
            assert not missing, f"{len(missing)} of B's events never reached A (consumer {consumer.counts})"
            assert consumer.rewinds == 1, "A started over once, when it saw the topic recreated"
            assert a.app.flag_state is not None and a.app.flag_state.flags_for(a.app.subject(x))
        finally:
            relay_a.close()
            relay_b.close()
            consumer.close()
