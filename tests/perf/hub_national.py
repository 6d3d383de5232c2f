"""The national-scale simulation of the hub topology (issue #23): one inbox topic per agency on the broker, the
hub routing queries between them at a fixed rate for a bounded time, on loopback only.

The rate: deploy/README.md ("Capacity on paper") puts the linkage at 30 M queries × 2 events = 60 M events a
year, 60 M ÷ (245 days × 8 h × 3,600 s) ≈ 8.5 events/s in office hours; issue #23 takes the office-hour peak
as ≈ 85 events/s (10× that mean; the README's own planning peak is ×5, ≈ 45/s) and asks for 10× the peak,
≈ 850 events/s at the hub. Each event here is one query from a querier agency to a provider, both of which
registered the person first: the hub opens it, checks it, finds the provider's code, decides auto or staff,
seals the routed query to the provider's inbox and commits.

Load generation is bounded in count (``rate × seconds`` queries) and in time (the sending stops at
``seconds``; the drain after it is bounded too) and runs in a thread of this process (it shares the hub's
interpreter lock: the figure is a lower bound of what a hub in its own process does).

* **hub lag**: per query, from its record being handed to the producer until the hub committed its inbox past
  it — after the routed query was stored on the provider's inbox topic (the hub commits after its sends);
* **inboxes behind**: after the drain, the inboxes whose topic holds fewer routed queries than were sent to them.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from ledger.hub.log import open_hub_store
from ledger.hub.service import HubService
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.names import HUB
from ledger.linkage.sealing import read_header
from ledger.linkage.transport import Delivery, Topics
from tests.perf.hub_figures import Sender, _End, directory_time, p99, settings
from tests.support.hub_world import Cast
from tests.support.people import individual_number

__all__ = ["PEAK_EVENTS_S", "national", "office_hour_peak"]


def office_hour_peak() -> float:
    """Events/s at the office-hour peak as issue #23 takes it, from deploy/README.md's yearly volume."""
    events_a_year = 30_000_000 * 2  # 30 M linkage queries a year, two shared events each
    office_seconds = 245 * 8 * 3600  # working days × office hours
    return 10 * events_a_year / office_seconds  # ≈ 85: ten times the office-hour mean of ≈ 8.5


PEAK_EVENTS_S = round(10 * office_hour_peak())  # ≈ 850


class TimedTransport(KafkaTransport):
    """The hub's transport noting, at each commit, how long each record committed had waited since it was sent."""

    def __init__(self, *args: Any, sent_at: dict[str, float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at = sent_at
        self.pending: list[str] = []
        self.lags: list[float] = []

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        got = super().poll(timeout_ms, max_records)
        self.pending += [read_header(d.value).event_id for d in got]
        return got

    def commit(self) -> None:
        super().commit()
        now = time.perf_counter()
        self.lags += [now - self.sent_at[e] for e in self.pending if e in self.sent_at]
        self.pending = []


@dataclass
class _TimedEnd(_End):
    sent_at: dict[str, float] = field(default_factory=dict)

    def send(self, recipient: str, message: bytes) -> None:
        super().send(recipient, message)
        self.sent_at[read_header(message).event_id] = time.perf_counter()


def national(
    tmp: Path, address: str, inboxes: int, seconds: float, rate: float, people: int | None = None
) -> dict[str, Any]:
    """Run the simulation (module doc); returns the figures as a dict for the results JSON. ``people``
    (default: one per inbox, at least 200) are each registered by a querier and a provider; every inbox is some
    person's provider, so the queries reach every inbox."""
    people = people or max(200, inboxes)
    cfg, topics = settings(address), Topics(f"n{uuid.uuid4().hex[:8]}")
    codes = [f"{100000 + i:06d}" for i in range(inboxes)]
    t0 = time.perf_counter()
    ensure_inboxes(cfg, topics, [HUB, *codes])
    made_topics = time.perf_counter() - t0
    cast = Cast.of(*codes)
    directory = cast.directory()
    sent_at: dict[str, float] = {}
    sender = Sender(cfg, topics)
    ends = {c: AgencyEnd(cast.agencies[c], _TimedEnd(sender, c, sent_at), directory, directory_time) for c in codes}
    store = open_hub_store(f"sqlite:///{tmp / uuid.uuid4().hex}-hub.sqlite", "hub-1")
    transport = TimedTransport(cfg, HUB, topics, sent_at=sent_at)
    hub = HubService(store, transport, cast.hub, directory, directory_time)
    rng = random.Random(23)
    pairs = []
    try:
        # not timed: each person registered by a querier and a provider; the hub's producer told of every inbox
        for i in range(people):
            p = codes[i % inboxes]
            q = codes[(i + 1 + rng.randrange(inboxes - 1)) % inboxes]  # any other agency
            number = individual_number(rng)
            ends[q].file_person(number)
            ends[p].file_person(number)
            pairs.append((q, p, number))
        sender.drain()
        for code in codes:
            transport._producer.partitions_for(topics.inbox(code))
        _drain(hub, 2 * people, 300)
        sent_at.clear()
        transport.lags = []

        total = int(rate * seconds)
        expected: Counter[str] = Counter()
        stop = threading.Event()
        errors: list[BaseException] = []

        def generate() -> None:
            try:
                start = time.perf_counter()
                for i in range(total):
                    due = start + i / rate
                    if (wait := due - time.perf_counter()) > 0:
                        time.sleep(wait)
                    if time.perf_counter() - start > seconds or stop.is_set():
                        return  # bounded in time as well as count
                    q, p, number = pairs[i % len(pairs)]
                    ends[q].query(number, p, "児童手当", 74, "地方税関係情報")
                    expected[p] += 1
                sender.drain()
            except BaseException as exc:
                errors.append(exc)

        gen = threading.Thread(target=generate, daemon=True)
        started = time.perf_counter()
        gen.start()
        applied = 0
        while gen.is_alive():
            applied += hub.step(timeout_ms=50, max_records=500).applied
        sent_for = time.perf_counter() - started
        sent = sum(expected.values())
        sender.drain()
        applied += _drain(hub, sent - applied, max(30.0, seconds))
        drained_for = time.perf_counter() - started - sent_for
        if errors:
            raise RuntimeError("the load generator failed") from errors[0]
        held = _inbox_sizes(address, [topics.inbox(c) for c in codes])
        behind = {c: expected[c] - held[topics.inbox(c)] for c in codes if held[topics.inbox(c)] < expected[c]}
        lags = transport.lags
        return {
            "inboxes": inboxes,
            "rate_asked": rate,
            "seconds": seconds,
            "queries_sent": sent,
            "send_rate": round(sent / sent_for, 1),
            "applied": applied,
            "hub_rate": round(applied / (sent_for + drained_for), 1),
            "drain_seconds": round(drained_for, 2),
            "lag_p50_s": round(sorted(lags)[len(lags) // 2], 3) if lags else None,
            "lag_p99_s": round(p99(lags), 3) if lags else None,
            "lag_max_s": round(max(lags), 3) if lags else None,
            "inboxes_behind": len(behind),
            "routed_missing": sum(behind.values()),
            "topics_created_s": round(made_topics, 1),
        }
    finally:
        stop_all(sender, transport, store)


def stop_all(sender: Sender, transport: KafkaTransport, store: Any) -> None:
    sender.close()
    transport.close()
    store.engine.dispose()


def _drain(hub: HubService, want: int, seconds: float) -> int:
    """Step the hub until ``want`` more messages were applied, or ``seconds`` passed (bounded)."""
    done, deadline = 0, time.monotonic() + seconds
    while done < want and time.monotonic() < deadline:
        step = hub.step(timeout_ms=100, max_records=500)
        if step.parked:
            raise RuntimeError(f"the hub parked {step.parked} of the simulation's messages")
        done += step.applied
    return done


def _inbox_sizes(address: str, names: list[str], quiet_polls: int = 3, chunk: int = 100) -> dict[str, int]:
    """The records on each topic, read to the end with a plain consumer, ``chunk`` topics at a time (Tansu's end
    offsets, ListOffsets, ran behind the records a consumer is handed, and one fetch over 1,800 partitions came
    back empty, so they are counted this way)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False, auto_offset_reset="earliest")
    held: Counter[str] = Counter({n: 0 for n in names})
    try:
        for at in range(0, len(names), chunk):
            tps = [TopicPartition(n, 0) for n in names[at : at + chunk]]
            consumer.assign(tps)
            for tp, offset in consumer.beginning_offsets(tps).items():
                consumer.seek(tp, offset)
            quiet = 0
            while quiet < quiet_polls:
                got = consumer.poll(timeout_ms=300, max_records=5000)
                for tp, records in got.items():
                    held[tp.topic] += len(records)
                quiet = 0 if got else quiet + 1
        return dict(held)
    finally:
        consumer.close()
