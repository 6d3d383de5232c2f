"""kill -9 of a hub-mode agency's node (issue 19's fault suite on the hub topology): B runs ``flagledger node``
(linkage hub mode, on a digest schedule as by default) over a real broker (Tansu) and dies by SIGKILL

1. at ``bridge.before_tick``: after its database committed the flag change and the bridge handed it to the
   tick's digest, before the digest was sent — it used to be recorded sent already, so the restarted node
   never sent it: the hub never learnt of the protection;
2. at ``bridge.sent``: after the broker stored the digest, before the node recorded it sent — the restarted
   node sends it again; the same message is the same event, and the hub files it once.

The hub's loop and the agencies A (provider) and C (querier) run in this process; C asks A about each person B
protects. Each ends with the exactly-once and leak-freedom check (``hub_checks.exactly_once``).

Threats: an administrator restarting a node, or the machine failing — not an attacker, but the perpetrator's
query about the person B protects must never be answered automatically, however the node died.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_flag_changes
from ledger.runtime.config import NodeConfig
from tests.conftest import NodeFactory
from tests.faults.harness import FLAGLEDGER, RUNNING, Victim
from tests.faults.hub_checks import HubWork, exactly_once
from tests.faults.hub_kafka import drive, kafka_world
from tests.support.hub_world import B
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with broker() as where:
        yield where


def start_node(data_dir: Path, env: dict[str, str], log: Path, faultpoint: str | None = None) -> Victim:
    full = {**env, **({"FLAGLEDGER_FAULTPOINT": faultpoint} if faultpoint else {})}
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [FLAGLEDGER, "node", "--data-dir", str(data_dir), "--checkpoint-every", "0", "--audit-views-every", "0"],
            env=full,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    victim = Victim(proc, log)
    RUNNING.append(victim)
    return victim


def test_agency_node_killed_before_its_tick_and_after_its_send(
    address: str, make_node: NodeFactory, tmp_path: Path
) -> None:
    """Administrator / machine failure at an agency in hub mode (see the module): 0 lost, 0 duplicated."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    world = kafka_world(address, make_node, store)
    w = world.w
    b_dir = w.nodes[B].config.data_dir
    config = NodeConfig.load(b_dir)
    config.kafka = {"bootstrap_servers": address, "fetch_max_wait_ms": 10, "delivery_timeout_ms": 20000}
    config.linkage["topic_prefix"] = world.topics.prefix
    config.linkage["digests"] = {"every_seconds": 0.5}
    config.save()
    w.bridges.pop(B).transport.close()  # B's bridge runs in its node process from now on
    env = {k: v for k, v in os.environ.items() if k != "FLAGLEDGER_FAULTPOINT"}
    log = tmp_path / "b.log"

    def filed() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(hub_flag_changes)).scalar_one())

    try:
        work = HubWork(random.Random(9))
        for point in ("bridge.before_tick:1", "bridge.sent:1"):
            protected = work.protect(w, people=1)
            victim = start_node(b_dir, env, log, point)
            assert victim.wait(90) == -9, victim.output()[-2000:]  # died at the fault point, by SIGKILL
            restarted = start_node(b_dir, env, log)
            try:
                # the protection reaches the hub (a query routed before it would be answered on A's flags alone)
                drive(w, lambda: filed() == len(work.protected), seconds=60)
                work.ask(w, protected)
                drive(w, lambda: work.done(w))
            finally:
                assert restarted.stop() == 0, restarted.output()[-2000:]
        exactly_once(w, store, work)
    finally:
        world.close()
        store.close()
