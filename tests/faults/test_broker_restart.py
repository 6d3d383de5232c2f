"""The broker restarts and forgets everything (Tansu's memory storage): topics, records, group offsets.

Both agencies run ``flagledger node`` (relay + consume + projections) throughout. A is stopped while B
publishes a batch, so that batch exists only in the broker when it dies; B keeps working while the broker is
down. Nobody touches the nodes: B's relay notices that the broker no longer holds what it acknowledged,
recreates the topics and republishes from the start; A's consumer finds its group offsets gone and reads from
the earliest offset. Both end complete, nothing applied twice.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.outbox import publishable
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import open_node
from ledger.runtime.tables import relay_position
from tests.conftest import A
from tests.faults.checks import assert_node_sound, completeness
from tests.faults.harness import Pair, Victim, kafka_env, make_pair, start, wait_progressing, wait_until
from tests.support.tansu import broker, free_port

pytestmark = pytest.mark.kafka
STALL = 60.0  # seconds without a single event received either way: the nodes are stuck, not slow


def published_all(data_dir: Path, topic: str) -> bool:
    node = open_node(data_dir)
    try:
        with node.engine.connect() as conn:
            pos = conn.execute(select(relay_position.c.position).where(relay_position.c.topic == topic)).scalar()
        last = max((p for p, _, _ in publishable(node.app)), default=0)
        return int(pos or 0) >= last
    finally:
        node.close()


def a_events_at_b(pair: Pair) -> set[str]:
    node = open_node(pair.b_dir)
    try:
        return {env.header.event_id for _, _, env in node.app.envelopes() if env.header.origin == A}
    finally:
        node.close()


def expected_from_a(pair: Pair) -> set[str]:
    node = open_node(pair.a_dir)
    try:
        return {Envelope.from_bytes(raw).header.event_id for _, _, raw in publishable(node.app)}
    finally:
        node.close()


def converged(pair: Pair) -> bool:
    return pair.b_events_at_a() >= pair.expected_from_b() and a_events_at_b(pair) >= expected_from_a(pair)


def replication(pair: Pair) -> tuple[bool, int]:
    """Whether both sides are complete, and how many events each holds from the other (grows while replicating)."""
    at_a, at_b = pair.b_events_at_a(), a_events_at_b(pair)
    return at_a >= pair.expected_from_b() and at_b >= expected_from_a(pair), len(at_a) + len(at_b)


def diagnosis(pair: Pair, why: str, nodes: dict[str, Victim]) -> str:
    """What a failed wait leaves to read: what each side misses, each node's last status and output."""
    lines = [why]
    try:
        lines.append(f"B's events missing at A: {len(pair.expected_from_b() - pair.b_events_at_a())}")
        lines.append(f"A's events missing at B: {len(expected_from_a(pair) - a_events_at_b(pair))}")
    except Exception as exc:  # a diagnosis must not hide the failure it explains
        lines.append(f"(could not count: {exc!r})")
    for d in (pair.a_dir, pair.b_dir):
        status = d / "node-status.json"
        lines.append(f"{d.name} status: {status.read_text()[:600] if status.exists() else '-'}")
    for name, victim in nodes.items():
        lines.append(f"--- {name} (exit {victim.proc.poll()}):\n{victim.output()[-2500:]}")
    return "\n".join(lines)


# In the long suite since 2026-12-07: in both fresh-clone CI runs of session 9 this test did not converge within
# 120 s inside the full default suite (A's probe first met "file is not a database"), while it passed alone. Session
# 10 could not reproduce that: about 20 runs passed, alone (16-18 s), at load average 5-10 from other work (24-94 s)
# and with the broker kept down 0-14 s. It found and fixed a real skip on the way (a consumer left past the end of a
# recreated topic read on from its old offset: tests/integration/test_broker_data_loss.py) and now waits on
# progress, so a failure says what is missing where. It returns to the default suite once a full-suite run passes.
# Run: bash deploy/dev.sh long tests/faults/test_broker_restart.py
@pytest.mark.long
def test_memory_broker_restart_loses_everything_and_the_nodes_recover_alone(make_node, tmp_path: Path) -> None:
    pair = make_pair(make_node, tmp_path, seed=4)
    pair.protect_at_b(6)
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    env = kafka_env(f"127.0.0.1:{port}", tag)
    topic = env["FLAGLEDGER_KAFKA_TOPIC"]
    with broker(port):
        node_b = start(pair.b_dir, "node", env=env, log=tmp_path / "node-b.log")
        node_a = start(pair.a_dir, "node", env=env, log=tmp_path / "node-a.log")
        assert wait_until(lambda: pair.b_events_at_a() >= pair.expected_from_b(), 60, 0.25), node_a.output()[-3000:]
        pair.probe_at_a(3)  # held requests at A: shared, so B receives them
        assert wait_until(lambda: converged(pair), 60, 0.25), node_b.output()[-3000:]
        assert node_a.stop() == 0
        pair.protect_at_b(4)  # published while A is away: after the restart only B's ledger still has them
        assert wait_until(lambda: published_all(pair.b_dir, topic), 30, 0.25), node_b.output()[-3000:]
        held_before = pair.held_requests_at_a()
    pair.protect_at_b(3)  # while the broker is down
    with broker(port):
        pair.probe_at_a(2)
        node_a = start(pair.a_dir, "node", env=env, log=tmp_path / "node-a2.log")
        # a wait on progress, not a fixed time: under CPU contention this phase took 15-60 s (load 5-10); a node
        # that stops receiving fails in STALL seconds, with what is missing where
        nodes = {"node A": node_a, "node B": node_b}
        why = wait_progressing(lambda: replication(pair), STALL, nodes)
        assert why is None, diagnosis(pair, why, nodes)
        assert node_a.stop() == 0 and node_b.stop() == 0
    status = json.loads((pair.b_dir / "node-status.json").read_text())
    assert status["republished_after_loss"] >= 1, status
    assert status["reread_after_loss"] >= 1, status  # B saw the topic recreated and read it again from the start
    assert_node_sound(pair.a_dir, held_before)
    assert_node_sound(pair.b_dir)
    for receiver, origin in ((pair.a_dir, pair.b_dir), (pair.b_dir, pair.a_dir)):
        published, missing, extra = completeness(receiver, origin)
        assert published > 0 and (missing, extra) == (0, 0), (receiver.name, published, missing, extra)
