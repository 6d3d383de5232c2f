"""kill -9 of the relay, the consumer and the projector, at named fault points and at random times.

Each fault: B (the origin) gets new protections and A's counter new (held) requests, then one victim process
dies of SIGKILL; then everything is restarted cleanly until A holds every event B published, and the checks
of ``tests/faults/checks.py`` run on both nodes. CI runs one fault of each kind; the long run (marked
``long``) runs ``FLAGLEDGER_FAULTS`` (default 60) faults drawn at random — see tests/faults/README.md.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers.parked import parked
from ledger.runtime.bootstrap import open_node
from tests.conftest import B
from tests.faults.checks import assert_node_sound, completeness
from tests.faults.harness import FLAGLEDGER, Pair, kafka_env, make_pair, start, wait_until
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka

# (victim, fault point or None for a random-time kill)
KINDS = [
    ("relay", "relay.after_produce"),
    ("relay", None),
    ("consume", "consumer.polled"),
    ("consume", "consumer.after_db_commit"),
    ("consume", "projector.mid_page"),
    ("consume", None),
    ("rebuild", "projector.mid_page"),
    ("rebuild", None),
]


@dataclass
class Tally:
    faults: Counter[str]
    poison: int = 0  # garbage messages sent: each must be parked exactly once
    survived: int = 0  # victims that finished before the kill landed (not counted as faults)
    published: int = 0
    lost: int = 0
    duplicates: int = 0


def relay_clean(pair: Pair, env: dict[str, str]) -> None:
    subprocess.run(
        [FLAGLEDGER, "--data-dir", str(pair.b_dir), "relay"], env=env, check=True, capture_output=True, timeout=120
    )


def consume_until_complete(pair: Pair, env: dict[str, str], log: Path) -> None:
    expected = pair.expected_from_b()
    if pair.b_events_at_a() >= expected:
        return  # the victim got everything in before it died; the next round's consumer re-reads its batch
    consumer = start(pair.a_dir, "consume", env=env, log=log)
    try:
        ok = wait_until(lambda: pair.b_events_at_a() >= expected, 90, step=0.25)
        assert ok, f"A did not receive every event of B; consumer log:\n{consumer.output()[-3000:]}"
    finally:
        # -SIGTERM: stopped while still starting up (before its handler was installed), also a clean stop
        assert consumer.stop() in (0, -15), consumer.output()[-3000:]


def send_poison(address: str, topic: str, i: int) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all")
    producer.send(topic, key=B.encode(), value=f"garbage {i}".encode())
    producer.flush()
    producer.close()
    return 1


def log_size(pair: Pair) -> int:
    node = open_node(pair.a_dir)
    try:
        return node.app.max_position()
    finally:
        node.close()


def parked_count(pair: Pair) -> int:
    node = open_node(pair.a_dir)
    try:
        return len(parked(node))
    finally:
        node.close()


def inject(pair: Pair, env: dict[str, str], victim: str, point: str | None, rng: random.Random) -> bool:
    """Run ``victim`` and kill it; True if it died of SIGKILL (a fault), False if it finished first."""
    log = pair.work / f"{victim}-{time.monotonic_ns()}.log"
    if victim == "relay":
        proc = start(pair.b_dir, "relay", env=env, log=log, faultpoint=f"{point}:1" if point else None)
        if point is None:
            time.sleep(rng.uniform(0.4, 1.6))  # from start-up to mid-publish on this machine
            return proc.kill()
        proc.wait(60)
        return proc.died_of_sigkill
    if victim == "consume":
        relay_clean(pair, env)
        backlog = len(pair.expected_from_b() - pair.b_events_at_a())
        spec = f"{point}:{rng.randint(1, max(1, backlog))}" if point else None
        before = len(pair.b_events_at_a())
        proc = start(pair.a_dir, "consume", env=env, log=log, faultpoint=spec)
        if point is None:
            wait_until(lambda: len(pair.b_events_at_a()) > before or proc.proc.poll() is not None, 20, step=0.02)
            time.sleep(rng.uniform(0, 0.3))
            return proc.kill()
        # a count beyond what this run passes never fires: then the kill lands wherever the consumer is
        wait_until(lambda: proc.proc.poll() is not None, 25)
        return proc.kill()
    assert victim == "rebuild"
    # about a quarter of the log's positions are projected since rosters carry roles (set-up's RoleCertified and
    # the like are not projected): a count beyond what the rebuild projects would never fire
    spec = f"{point}:{rng.randint(1, max(1, log_size(pair) // 6))}" if point else None
    proc = start(pair.a_dir, "projections", "rebuild", env=env, log=log, faultpoint=spec)
    if point is None:
        time.sleep(rng.uniform(0.5, 1.8))
        return proc.kill()
    proc.wait(60)
    return proc.died_of_sigkill


def run_faults(
    pair: Pair, address: str, schedule: list[tuple[str, str | None]], rng: random.Random, recover_every: int = 1
) -> Tally:
    """Inject each fault; after each, the per-node checks; every ``recover_every`` faults (and at the end),
    restart everything until A holds all of B's events and check that nothing was lost or doubled."""
    env = kafka_env(address, uuid.uuid4().hex[:8])
    tally = Tally(Counter())
    progress = os.environ.get("FLAGLEDGER_FAULTS_REPORT")
    started = time.monotonic()
    for i, (victim, point) in enumerate(schedule, 1):
        pair.protect_at_b(rng.randint(3, 8))
        pair.probe_at_a(2)
        if i == 1 or rng.random() < 0.2:
            tally.poison += send_poison(address, env["FLAGLEDGER_KAFKA_TOPIC"], i)
        held_before = pair.held_requests_at_a()
        if inject(pair, env, victim, point, rng):
            tally.faults[f"{victim}@{point or 'random'}"] += 1
        else:
            tally.survived += 1
        assert_node_sound(pair.a_dir, held_before)
        assert_node_sound(pair.b_dir)
        if i % recover_every and i != len(schedule):
            continue
        relay_clean(pair, env)
        consume_until_complete(pair, env, pair.work / f"recovery-{i}.log")
        assert_node_sound(pair.a_dir, held_before)
        published, missing, extra = completeness(pair.a_dir, pair.b_dir)
        tally.published, tally.lost, tally.duplicates = published, tally.lost + missing, tally.duplicates + extra
        assert (missing, extra) == (0, 0), f"after {victim}@{point}: {missing} lost, {extra} extra"
        assert parked_count(pair) == tally.poison, "every poison message parked exactly once"
        if progress:
            Path(progress + ".progress").write_text(
                f"{i}/{len(schedule)} faults={sum(tally.faults.values())} lost={tally.lost} "
                f"duplicates={tally.duplicates} published={published} {time.monotonic() - started:.0f}s\n"
            )
    if progress:
        Path(progress).write_text(
            json.dumps(
                {
                    "faults_injected": sum(tally.faults.values()),
                    "by_kind": dict(tally.faults),
                    "victims_that_finished_first": tally.survived,
                    "events_published_by_B": tally.published,
                    "events_lost": tally.lost,
                    "duplicates": tally.duplicates,
                    "poison_parked_once": tally.poison,
                    "seconds": round(time.monotonic() - started),
                },
                indent=2,
            )
        )
    return tally


def test_a_kill_of_each_process(make_node, tmp_path: Path) -> None:
    pair = make_pair(make_node, tmp_path, seed=6)
    schedule: list[tuple[str, str | None]] = [  # the long run covers the other kinds and random times
        ("consume", "consumer.after_db_commit"),
        ("relay", "relay.after_produce"),
        ("rebuild", "projector.mid_page"),
    ]
    with broker() as address:
        # one recovery at the end keeps CI short; the long run recovers and checks completeness after every fault
        tally = run_faults(pair, address, schedule, random.Random(6), recover_every=len(schedule))
    assert sum(tally.faults.values()) == 3, tally
    assert (tally.lost, tally.duplicates) == (0, 0)


@pytest.mark.long
def test_many_random_kills(make_node, tmp_path: Path) -> None:
    n = int(os.environ.get("FLAGLEDGER_FAULTS", "60"))
    seed = int(os.environ.get("FLAGLEDGER_FAULT_SEED", str(random.SystemRandom().randrange(1 << 30))))
    print(f"fault seed {seed}", file=sys.stderr)
    rng = random.Random(seed)
    pair = make_pair(make_node, tmp_path, seed=seed)
    schedule = [rng.choice(KINDS) for _ in range(n)]
    with broker() as address:
        tally = run_faults(pair, address, schedule, rng)
    print(f"faults {dict(tally.faults)} survived {tally.survived} lost {tally.lost}", file=sys.stderr)
    assert sum(tally.faults.values()) >= 0.8 * n, tally
    assert (tally.lost, tally.duplicates) == (0, 0)
