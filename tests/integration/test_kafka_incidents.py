"""Incidents through a real Kafka-protocol broker (Tansu): forgeries put on the topic reach the holder's work
queue, the node's Prometheus metric and ``node-status.json``, and redelivery raises nothing twice."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.broker import wait_for
from consumers.inbox import Consumer
from consumers.outbox import Relay
from consumers.parked import parked
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.app.incidents import incidents_of
from ledger.node.observe import NodeMetrics
from ledger.runtime.bootstrap import AgencySpec, Node
from projections.views import work_queue
from tests.conftest import A, B
from tests.support.forgery import published, resigned, tampered
from tests.support.tansu import broker
from tests.support.trust import trust

pytestmark = pytest.mark.kafka
FLAGS = ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


def settings(address: str, topic: str, group: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=address, topic=topic, dead_letter_topic=f"dlq-{topic}", group_id=group,
        session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_interval_ms=10000, fetch_max_wait_ms=10,
    )  # fmt: skip


@pytest.fixture
def pair(make_node: Callable[..., Node], tmp_path: Path, person: Callable[[], str]) -> tuple[Node, Node, str]:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    trust(b, a)
    x = person()
    rid = b.app.request_flags(Actor(B, "req"), x, FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    return a, b, x


def put(address: str, topic: str, *raws: bytes) -> None:
    """What a hostile peer or the broker operator does: write records straight onto the topic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all")
    for raw in raws:
        producer.send(topic, key=B.encode(), value=raw)
    producer.flush()
    producer.close()


def test_forgeries_on_the_topic_reach_the_holders_queue_and_the_metric_once(
    bootstrap: str, pair: tuple[Node, Node, str]
) -> None:
    """Threat: a peer agency holding a copy of B's traffic (or the broker operator) puts on the topic an altered
    copy of B's FlagsSet of X, and an insider with B's key a second, properly signed history of it. B's node,
    reading the topic like every other, alerts B (the holder) through its queue and the incident counter; A's
    node alerts A. The operator republishing everything, forgeries included, raises nothing new."""
    a, b, x = pair
    topic = f"events-{uuid.uuid4().hex[:8]}"
    cfg_b, cfg_a = settings(bootstrap, topic, f"b-{topic}"), settings(bootstrap, topic, f"a-{topic}")
    relay = Relay(b, cfg_b)
    at_b, at_a = Consumer(b, cfg_b), Consumer(a, cfg_a)
    genuine = published(b, B, "Protection.FlagsSet")
    forgeries = (tampered(genuine), resigned(genuine, b.app.signers[B]))
    try:
        assert relay.run_once() > 0
        put(bootstrap, topic, *forgeries)
        for consumer, node, agency in ((at_b, b, B), (at_a, a, A)):
            raised = wait_for(
                lambda c=consumer, n=node, g=agency: (
                    c.poll_once(500) >= 0  # type: ignore[misc]
                    and len(incidents_of(n.app, g)) >= 2
                ),
                45,
            )
            assert raised, (consumer.counts, parked(node))
        queue = work_queue(b, Actor(B, "rev"))
        assert sorted((i.kind, i.code) for i in queue.incidents) == [
            ("forged_signature", "bad_signature"),
            ("fork", "forged_own"),
        ]
        assert all(i.subjects == (b.app.subject(x),) and i.origin == B for i in queue.incidents)
        assert sorted(i.kind for i in work_queue(a, Actor(A, "rev")).incidents) == ["forged_signature", "fork"]
        assert b.app.flag_state is not None and set(b.app.flag_state.flags_for(b.app.subject(x))) == set(FLAGS)

        metrics = NodeMetrics()
        metrics.update(b, relay, at_b)
        text = metrics.render().decode()
        assert 'flagledger_incidents_raised_total{kind="forged_signature"} 1.0' in text
        assert 'flagledger_incidents_raised_total{kind="fork"} 1.0' in text
        assert 'flagledger_incidents_raised_total{kind="foreign_writer"} 0.0' in text
        assert f'flagledger_incidents_open{{agency="{B}"}} 2.0' in text

        relay.reset(0)  # the operator republishes everything; the forgeries come again at new offsets
        assert relay.run_once() > 0
        put(bootstrap, topic, *forgeries)
        assert wait_for(lambda: at_b.poll_once(500) >= 0 and len(parked(b)) >= 4, 45), parked(b)
        assert len(incidents_of(b.app, B)) == 2 and at_b.incidents == {"forged_signature": 1, "fork": 1}
        metrics.update(b, relay, at_b)
        assert 'flagledger_incidents_raised_total{kind="forged_signature"} 1.0' in metrics.render().decode()
    finally:
        relay.close()
        at_b.close()
        at_a.close()


def test_the_node_loop_reports_incidents_in_node_status(
    bootstrap: str, pair: tuple[Node, Node, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threat: the broker operator alters B's FlagsSet on the topic while B's node runs unattended: the
    operator's status file shows the incident raised and open for B without anyone running a command."""
    from ledger.cli.main import main

    _, b, _ = pair
    topic = f"events-{uuid.uuid4().hex[:8]}"
    for name, value in (("BOOTSTRAP_SERVERS", bootstrap), ("TOPIC", topic), ("GROUP_ID", f"g-{topic}"),
                        ("DEAD_LETTER_TOPIC", f"dlq-{topic}"), ("FETCH_MAX_WAIT_MS", "10"),
                        ("SESSION_TIMEOUT_MS", "6000"), ("HEARTBEAT_INTERVAL_MS", "1000")):  # fmt: skip
        monkeypatch.setenv(f"FLAGLEDGER_KAFKA_{name}", value)
    put(bootstrap, topic, tampered(published(b, B, "Protection.FlagsSet")))
    argv = [
        "--data-dir",
        str(b.config.data_dir),
        "node",
        "--seconds",
        "10",
        "--checkpoint-every",
        "0",
        "--projections",
        "inline",
    ]
    assert main(argv) == 0
    status = json.loads((b.config.data_dir / "node-status.json").read_text())
    assert status["incidents"] == {"raised": {"forged_signature": 1}, "open": {B: 1}}, status
