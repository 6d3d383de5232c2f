"""Figures of the hub topology (issues #19, #23) through the real Tansu broker, each against a baseline of the
same run that reads and opens the same bytes.

* :func:`propagation_p99`: agency nodes B and A in hub mode and the hub (its flag map on, as deployed), each on
  its own Kafka transport and loop thread: B's staff execute a flag set; the clock stops when A's node holds a
  signed map head of the hub that includes it (a head numbered after the hub filed the change) — from then on
  every routed query A is given about the person is checked against the flag. Two hops, each message sealed,
  signed, opened and verified, and two database commits at the hub and one at A.
  Baseline :func:`sealed_hop_p99`: kafka-python's own produce → consume of one record of the size A received,
  the consumer opening it (HPKE) and checking its signature as A does.
* :func:`hub_ingest`: events/s the hub applies from its Kafka inbox as :meth:`HubService.step` runs (poll,
  open, verify, drop replays, sequence, file, owe and send, commit), registrations and sealed provision
  records (the bulk of the linkage's traffic, deploy/README.md) already on the topic.
  Baseline :func:`plain_ingest`: the same records read from the same topic with a plain consumer, each opened and
  verified with the hub's key, then saved a poll at a time by a plain eventsourcing application.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy import func, select

from consumers.broker import new_producer
from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.hub.heads import MapHeads
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.tables import hub_flag_changes
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import seal, unseal
from ledger.linkage.transport import Delivery, Topics, check_route
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from ledger.runtime.tables import agency_map_heads
from tests.conftest import enrol_standard_staff
from tests.support.hub_nodes import hub_nodes, set_flag
from tests.support.hub_world import START, A, B, C, Cast, D
from tests.support.people import individual_number

__all__ = ["hub_ingest", "plain_ingest", "propagation_p99", "sealed_hop_p99", "settings"]


def settings(address: str) -> KafkaSettings:
    # Tansu answers a waiting fetch after about half of fetch_max_wait_ms (LIBRARY-NOTES), as kafka_figures
    return KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


class SizedTransport(KafkaTransport):
    """A party's Kafka transport that notes the largest record it was handed (the baseline's record size)."""

    largest = 0

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        got = super().poll(timeout_ms, max_records)
        self.largest = max([self.largest, *(len(d.value) for d in got)])
        return got


class Loops:
    """Functions turned in their own threads until closed, as each party's loop runs; errors kept, not lost."""

    def __init__(self, *turns: Callable[[], bool]) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

        def run(turn: Callable[[], bool]) -> None:
            try:
                while not self.stop.is_set():
                    if not turn():
                        time.sleep(0.001)
            except BaseException as exc:  # reported by the measuring thread
                self.errors.append(exc)

        self.threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in turns]
        for t in self.threads:
            t.start()

    def check(self) -> None:
        if self.errors:
            raise RuntimeError("a party's loop failed") from self.errors[0]

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def _make_node(tmp: Path) -> Callable[..., Node]:
    def make(agencies: tuple[AgencySpec, ...], *, name: str, database_url: str | None = None) -> Node:
        node = init_node(tmp / f"{name}-{uuid.uuid4().hex[:8]}", agencies, database_url=database_url)
        enrol_standard_staff(node)
        return node

    return make


@dataclass
class Propagation:
    p99_ms: float
    received_bytes: int  # the largest record A was handed: a head (the baseline's record size)
    sent_bytes: int  # the largest record on the hub's topic (noted for the JSON; a flag change is in the 1,024 bucket)
    to_hub_p99_ms: float  # B's execution until the hub's step that filed the change returned
    to_a_p99_ms: float  # from there until A's node held the head
    p50_ms: float = 0.0  # the median: steadier than the p99 on a shared machine, for comparing code (not a target)


def propagation_p99(tmp: Path, address: str, samples: int, hub_url: str | None = None) -> Propagation:
    """ms from B's flag execution committed until A's node holds a hub head that includes it (module doc)."""
    cfg, topics = settings(address), Topics(f"p{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, A, B, PORTAL])
    opened: dict[str, SizedTransport] = {}

    def open_transport(party: str) -> KafkaTransport:
        opened[party] = SizedTransport(cfg, party, topics)
        return opened[party]

    store = open_hub_store(hub_url or f"sqlite:///{tmp / uuid.uuid4().hex}-hub.sqlite", "hub-1")
    world = hub_nodes(_make_node(tmp), store, (A, B), open_transport=open_transport, heads=MapHeads)
    a, b = world.nodes[A], world.nodes[B]

    def push_b() -> bool:
        pushed = world.bridges[B].push()
        return bool(pushed.acts or pushed.registrations)

    stepped: list[float] = []  # when each hub step that applied something returned (the hub's thread)

    def step_hub() -> bool:
        applied = bool(world.hub.step(timeout_ms=50).applied)
        if applied:
            stepped.append(time.perf_counter())
        return applied

    def pull_a() -> bool:
        return bool(world.bridges[A].pull(timeout_ms=50).applied)

    loops = Loops(push_b, step_hub, pull_a)
    rng = random.Random(11)
    latencies: list[float] = []
    hops: list[tuple[float, float]] = []
    try:
        for i in range(samples + 1):
            person = individual_number(rng)
            set_flag(b, B, person, "NO_AUTO_RESPONSE")
            t = time.perf_counter()
            _until_a_holds(a, store, loops, t, before_seq=_flag_seq(store))
            end = time.perf_counter()
            if i:  # the first includes the consumer groups' joins and the hub's first map
                latencies.append((end - t) * 1000)
                filed = max((x for x in stepped if t < x < end), default=t)
                hops.append(((filed - t) * 1000, (end - filed) * 1000))
    finally:
        loops.close()
        world.close()
        for transport in opened.values():
            transport.close()
        store.engine.dispose()
    received, sent = opened[A].largest, opened[HUB].largest
    p50 = sorted(latencies)[len(latencies) // 2]
    return Propagation(p99(latencies), received, sent, p99([h for h, _ in hops]), p99([a for _, a in hops]), p50)


def _flag_seq(store: HubStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(hub_flag_changes.c.seq), 0))).scalar_one())


def _until_a_holds(a: Node, store: HubStore, loops: Loops, started: float, before_seq: int) -> None:
    """Wait until A keeps a head numbered after the hub filed the new flag change (seq > before_seq)."""
    deadline, seen = time.monotonic() + 60, 0
    newest = select(func.coalesce(func.max(agency_map_heads.c.seq), 0))
    while True:
        loops.check()
        with a.engine.connect() as conn:
            head = int(conn.execute(newest).scalar_one())
        if head > seen:
            seen = head
            filed = _flag_seq(store)
            if filed > before_seq and head > filed:
                return
        if time.monotonic() > deadline:
            waited = time.perf_counter() - started
            raise RuntimeError(f"A never held a head past the flag (head {seen}, {waited:.0f} s)")
        time.sleep(0.0005)


def sealed_hop_p99(address: str, samples: int, size: int) -> float:
    """kafka-python's own end-to-end latency (ms) of one record of ``size`` bytes: the hub's sealed message to A,
    produced with the transport's producer settings, consumed, opened and its signature checked as A does."""
    from kafka import KafkaConsumer, TopicPartition

    cast = Cast.of(A)
    directory = cast.directory()
    cfg, topics = settings(address), Topics(f"k{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [A])
    producer = new_producer(cfg)
    consumer = KafkaConsumer(
        bootstrap_servers=address, fetch_max_wait_ms=cfg.fetch_max_wait_ms, enable_auto_commit=False
    )
    tp = TopicPartition(topics.inbox(A), 0)
    consumer.assign([tp])
    consumer.seek_to_end(tp)
    consumer.position(tp)
    keys, sender_keys = cast.agencies[A], directory.sender_keys(directory_time())
    received: dict[str, float] = {}
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=50).values():
                for record in batch:
                    opened = unseal(keys.sealing, A, bytes(record.value), sender_keys)
                    received[opened.event_id] = time.perf_counter()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    # the payload padded into the bucket the figure's message used (seal pads to at least ``at_least``)
    room = max(0, size - 101 - 200)
    latencies = []
    try:
        for i in range(samples + 1):
            event_id = uuid.uuid4().hex
            message = seal(cast.hub.signer, keys.sealing.public_key(), A, event_id, "map_head", b"x" * 64, room)
            t = time.perf_counter()
            producer.send(topics.inbox(A), key=HUB.encode(), value=message)
            deadline = time.monotonic() + 30
            while event_id not in received:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("a message never came back from the broker (or did not open)")
                time.sleep(0.0002)
            if i:
                latencies.append((received[event_id] - t) * 1000)
    finally:
        stop.set()
        thread.join(timeout=10)
        producer.close()
        consumer.close()
    return p99(latencies)


def directory_time() -> datetime:
    """The parties' clock: every key of a :class:`Cast` is valid from START on."""
    return START


# -- ingest --------------------------------------------------------------------------------------------------


class Sender:
    """One producer for many agencies' ends (the load generator's, not a party's transport): ``flush`` waits for
    nothing until :meth:`drain`, so records can be put on the hub's topic at the broker's pace."""

    def __init__(self, cfg: KafkaSettings, topics: Topics) -> None:
        self.producer = new_producer(cfg)
        self.topics = topics
        self.count = 0

    def end(self, party: str) -> _End:
        return _End(self, party)

    def drain(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()


@dataclass
class _End:
    sender: Sender
    party: str
    inbox: str = ""  # a sender only: it reads no inbox

    def send(self, recipient: str, message: bytes) -> None:
        check_route(self.party, recipient)
        self.sender.producer.send(self.sender.topics.inbox(recipient), key=self.party.encode(), value=message)
        self.sender.count += 1

    def flush(self) -> None:
        pass

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        return []

    def rewind(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


def ingest_load(cast: Cast, sender: Sender, events: int, per_person: int = 10) -> None:
    """``events`` messages on the hub's topic from four agencies: each person registered once, then provision
    records about them (sealed to the portal) — the mix of the linkage's traffic."""
    directory = cast.directory()
    ends = [AgencyEnd(cast.agencies[n], sender.end(n), directory, directory_time) for n in (A, B, C, D)]
    rng = random.Random(5)
    made = 0
    while made < events:  # about ``events`` records: the exact count is the sender's
        end = ends[made // per_person % len(ends)]
        number = individual_number(rng)
        for _ in range(per_person - 1):  # with the person's registration, ``per_person`` records
            end.record(number, C, "児童手当", 74, "地方税関係情報", "provided", "2026-01-01T09:00:00+09:00")
        made += per_person
    sender.drain()


@contextmanager
def _hub_on_kafka(address: str, url: str | None) -> Iterator[tuple[Cast, Topics, KafkaSettings, HubStore | None]]:
    cfg, topics = settings(address), Topics(f"i{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, A, B, C, D, PORTAL])
    cast = Cast.of(A, B, C, D, PORTAL)
    store = open_hub_store(url, "hub-1") if url is not None else None
    try:
        yield cast, topics, cfg, store
    finally:
        if store is not None:
            store.engine.dispose()


def _load(cast: Cast, cfg: KafkaSettings, topics: Topics, events: int) -> int:
    """Put the load on the hub's topic; returns how many records it is."""
    sender = Sender(cfg, topics)
    try:
        ingest_load(cast, sender, events)
        return sender.count
    finally:
        sender.close()


def hub_ingest(address: str, url: str, events: int) -> float:
    """Events/s the hub applies from its inbox, ``events`` messages waiting there (module doc)."""
    from ledger.hub.service import HubService

    with _hub_on_kafka(address, url) as (cast, topics, cfg, store):
        assert store is not None
        # roughly ``events`` messages: registrations count as events the hub applies
        waiting = _load(cast, cfg, topics, events)
        hub = HubService(store, KafkaTransport(cfg, HUB, topics), cast.hub, cast.directory(), directory_time)
        try:
            applied = 0
            hub.step(timeout_ms=0)  # the lease and the first metadata: not ingest
            hub.openers.start(hub.directory)  # a running hub spawned its opening workers long before: not ingest
            t = time.perf_counter()
            deadline = time.monotonic() + 600
            while applied < waiting:
                step = hub.step(timeout_ms=200, max_records=100)
                if step.parked:
                    raise RuntimeError(f"the hub parked {step.parked} of the benchmark's messages")
                applied += step.applied
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the hub applied only {applied} of {waiting}")
            return applied / (time.perf_counter() - t)
        finally:
            hub.close()
            hub.transport.close()


class PlainInbound(Aggregate):
    """The baseline's record of one opened message: its sender, id, kind and payload."""

    @event("Received")
    def __init__(self, sender: str, event_id: str, kind: str, payload: str) -> None:
        self.sender = sender


def plain_ingest(address: str, env: dict[str, str], events: int) -> float:
    """The baseline: the same kind of load read from the hub's topic, each record opened and verified with the
    hub's key and its payload parsed, saved a poll (≤ 100 records) at a time by a plain eventsourcing app."""
    from kafka import KafkaConsumer, TopicPartition

    with _hub_on_kafka(address, None) as (cast, topics, cfg, _):
        waiting = _load(cast, cfg, topics, events)
        sender_keys = cast.directory().sender_keys(directory_time())
        consumer = KafkaConsumer(bootstrap_servers=address, fetch_max_wait_ms=10, enable_auto_commit=False)
        tp = TopicPartition(topics.inbox(HUB), 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        consumer.position(tp)  # the first metadata: not ingest
        app: Application[Any] = Application(env=env)
        try:
            done, t = 0, time.perf_counter()
            deadline = time.monotonic() + 600
            while done < waiting:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the baseline read only {done} of {waiting}")
                for batch in consumer.poll(timeout_ms=200, max_records=100).values():
                    saved = []
                    for record in batch:
                        m = unseal(cast.hub.sealing, HUB, bytes(record.value), sender_keys)
                        json.loads(m.payload)
                        saved.append(PlainInbound(m.sender, m.event_id, m.kind, m.payload.decode()))
                    app.save(*saved)
                    done += len(saved)
            return done / (time.perf_counter() - t)
        finally:
            consumer.close()
            app.close()
