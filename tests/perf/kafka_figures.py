"""Figures through the real Tansu broker: Kafka ingest throughput and nationwide propagation latency.

Two nodes as in production: B publishes its outbox with the :class:`~consumers.outbox.Relay`, A consumes
with the :class:`~consumers.inbox.Consumer` (verify, append with the original signature, commit offsets)
and projects in its second process (:class:`~ledger.runtime.follower.Follower`), as ``consumers node`` runs.
Baselines are measured in the same run: a plain eventsourcing batched save of the same number of events,
and kafka-python's own end-to-end latency with the relay's producer settings.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from consumers.broker import ensure_topics, new_producer
from consumers.inbox import Consumer
from consumers.outbox import Relay
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.domain.provision import ProvisionRequest
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from ledger.runtime.follower import Follower
from tests.conftest import A, B, enrol_standard_staff
from tests.support.people import individual_number
from tests.support.trust import trust

__all__ = ["kafka_ingest", "kafka_latency_p99", "propagation_p99", "settings"]


def settings(address: str) -> KafkaSettings:
    group = f"bench{uuid.uuid4().hex[:8]}"
    return KafkaSettings(
        bootstrap_servers=address,
        topic=f"events-{group}",
        dead_letter_topic=f"dlq-{group}",
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10000,
        fetch_max_wait_ms=10,  # Tansu answers a waiting fetch after about half of this (LIBRARY-NOTES)
    )


def pair(tmp: Path) -> tuple[Node, Node]:
    """Nodes A and B sharing the pseudonym secret; A trusts B's key."""
    key = tmp / f"pseudonym-{uuid.uuid4().hex}.key"
    key.write_text(secrets.token_hex(32))
    a = init_node(tmp / uuid.uuid4().hex, [AgencySpec(A, "A市", "municipality")], pseudonym_key_file=key)
    b = init_node(tmp / uuid.uuid4().hex, [AgencySpec(B, "B市", "municipality")], pseudonym_key_file=key)
    enrol_standard_staff(a)
    enrol_standard_staff(b)
    trust(a, b, B, "B市")
    return a, b


def provision_requests(node: Node, events: int, per_batch: int = 50) -> None:
    """``events`` shared events at B: requests received and answered (2 events each), saved 50 requests a batch."""
    for i in range(0, events // 2, per_batch):
        batch = []
        for _ in range(min(per_batch, events // 2 - i)):
            r = ProvisionRequest(
                agency=B,
                querier=A,
                subject=f"p{uuid.uuid4().hex}",
                legal_item=74,
                procedure="児童手当",
                info_kind="地方税関係情報",
                applicant="unknown",
            )
            r.provide_automatically()
            batch.append(r)
        node.app.save_as(B, *batch)


def _consume_until(consumer: Consumer, applied: int, follower: Follower | None = None, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while consumer.counts.get("applied", 0) < applied:
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumer stuck at {consumer.counts} (wanted {applied} applied)")
        consumer.poll_once(200)
        if follower is not None:
            follower.poke()


def kafka_ingest(tmp: Path, address: str, events: int) -> float:
    """Events/s that A consumes, verifies, appends and projects (after its consumer group has joined).

    As the node loop runs it: the consumer ingests, a :class:`~ledger.runtime.follower.Follower` process
    projects, woken after each poll; the clock stops when every projection has reached the last event.
    """
    a, b = pair(tmp)
    cfg = settings(address)
    relay, consumer = Relay(b, cfg), Consumer(a, cfg, project=False)
    follower = Follower(a.config.data_dir, a.engine)
    try:
        follower.start()
        provision_requests(b, 2)  # warm-up: the group join (~3 s on Tansu) is not ingest
        relay.run_once()
        _consume_until(consumer, 2, follower)
        if not follower.wait_for(a.app.max_position(), 60):
            raise RuntimeError("the projections process did not catch up the warm-up events")
        provision_requests(b, events)
        relay.run_once()
        t = time.perf_counter()
        _consume_until(consumer, 2 + events, follower)
        if not follower.wait_for(a.app.max_position(), 600):
            raise RuntimeError(f"the projections process stopped at {follower.position()} (alive: {follower.alive()})")
        return events / (time.perf_counter() - t)
    finally:
        follower.close()
        relay.close()
        consumer.close()
        a.close()
        b.close()


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


class _Loops:
    """Relay (B) and consumer (A) running continuously in their own threads, as the node loop does."""

    def __init__(self, relay: Relay, consumer: Consumer, follower: Follower) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

        def relay_loop() -> None:
            while not self.stop.is_set():
                if relay.run_once() == 0:
                    time.sleep(0.001)

        def consume_loop() -> None:
            while not self.stop.is_set():
                if consumer.poll_once(50):
                    follower.poke()

        self.threads = [threading.Thread(target=self._guard(f), daemon=True) for f in (relay_loop, consume_loop)]
        for t in self.threads:
            t.start()

    def _guard(self, f: Any) -> Any:
        def run() -> None:
            try:
                f()
            except BaseException as exc:  # reported by the measuring thread, not lost in a thread
                self.errors.append(exc)

        return run

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def propagation_p99(tmp: Path, address: str, samples: int) -> float:
    """ms from a flag set at B (its execution committed) until A's request path holds for that person.

    Both nodes, the relay and the consumer share this one process (and its interpreter lock), A's projections
    run in A's second process as in the node loop; in production the nodes are on separate machines, so this
    is an upper bound.
    """
    a, b = pair(tmp)
    cfg = settings(address)
    relay, consumer = Relay(b, cfg), Consumer(a, cfg, project=False)
    follower = Follower(a.config.data_dir, a.engine)
    follower.start()
    rng = random.Random(11)
    loops = _Loops(relay, consumer, follower)
    # as the node runs: A's consumer ingests and wakes its projections process. The state is read without
    # catching up, so what it shows the child has projected (and the measuring thread takes no part)
    state = a.state
    latencies: list[float] = []
    try:
        for i in range(samples + 1):
            person = individual_number(rng)
            rid = b.app.request_flags(Actor(B, "req"), person, ["NO_AUTO_RESPONSE"])
            b.app.approve_request(Actor(B, "apr"), rid)
            b.app.execute_request(Actor(B, "op"), rid)
            t = time.perf_counter()
            pseudonym = a.app.subject(person)
            deadline = time.monotonic() + 60
            while not state.flags_for(pseudonym).get("NO_AUTO_RESPONSE"):
                if loops.errors:
                    raise RuntimeError("relay or consumer loop failed") from loops.errors[0]
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the flag never reached A (consumer counts {consumer.counts})")
                time.sleep(0.001)
            if i:  # the first includes the consumer group join
                latencies.append((time.perf_counter() - t) * 1000)
    finally:
        loops.close()
        follower.close()
        relay.close()
        consumer.close()
        a.close()
        b.close()
    return p99(latencies)


def kafka_latency_p99(address: str, samples: int) -> float:
    """kafka-python's own end-to-end latency (ms), relay producer settings, 500-byte messages, fetch wait 10 ms."""
    from kafka import KafkaConsumer, TopicPartition

    cfg = settings(address)
    ensure_topics(cfg)
    producer = new_producer(cfg)
    consumer = KafkaConsumer(
        bootstrap_servers=address, fetch_max_wait_ms=cfg.fetch_max_wait_ms, enable_auto_commit=False
    )
    tp = TopicPartition(cfg.topic, 0)
    consumer.assign([tp])
    consumer.seek_to_end(tp)
    consumer.position(tp)
    received: dict[int, float] = {}
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=50).values():
                now = time.perf_counter()
                for record in batch:
                    received[int(record.value[:12])] = now

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    latencies = []
    try:
        for i in range(samples + 1):
            t = time.perf_counter()
            producer.send(cfg.topic, value=f"{i:012d}".encode() + b"x" * 488)
            deadline = time.monotonic() + 30
            while i not in received:
                if time.monotonic() > deadline:
                    raise RuntimeError("a message never came back from the broker")
                time.sleep(0.0002)
            if i:
                latencies.append((received[i] - t) * 1000)
    finally:
        stop.set()
        thread.join(timeout=10)
        producer.close()
        consumer.close()
    return p99(latencies)
