"""A hub role process with opening workers (``linkage.open_workers``) stops on SIGTERM, promptly and completely.

Threat: the administrator or operator stopping a hub (draining a machine, handing the lease to the standby): a stop
that does not stop leaves two hub processes around the lease, or one killed mid-commit once the grace runs out;
a worker left behind keeps the hub's sealing key in a process nobody watches. And nothing the hub acknowledged
(committed on its inbox) is lost: every message of the poll the workers opened is in the hub's records after the
stop, and a restarted hub is handed none of them again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from consumers.kafka_transport import ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.linkage.names import HUB
from ledger.linkage.transport import Topics
from tests.support.tansu import broker

# stop times judged in seconds: run by itself after the rest (deploy/dev.sh test)
pytestmark = [pytest.mark.kafka, pytest.mark.alone]

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
MESSAGES = 120  # well above the workers' minimum poll (ledger.hub.openers.MIN_MESSAGES)
GRACE = 20.0  # past this the stop failed outright
STOP_WITHIN = 6.0  # the local network gives 15 s; before the fix, a stop while the workers started took 4-8 s


def _workers(proc: psutil.Process) -> list[psutil.Process]:
    """The hub's spawned children (its opening workers, and multiprocessing's resource tracker)."""
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _parked(hub_dir: Path) -> int:
    with sqlite3.connect(hub_dir / "hub.sqlite") as conn:
        return int(conn.execute("SELECT count(*) FROM hub_parked").fetchone()[0])


def _start(env: dict[str, str], hub_dir: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [FLAGLEDGER, "node", "--role", "hub", "--data-dir", str(hub_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[int, float, str]:
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the hub did not stop within {GRACE} s of SIGTERM")
    return proc.returncode, time.monotonic() - began, out


def test_a_hub_with_opening_workers_stops_on_sigterm_leaving_no_worker(tmp_path: Path) -> None:
    """Administrator/operator stopping the hub (see the module): SIGTERM while its two workers are still starting,
    then again once they are idle — each time exit 0 within seconds and no worker left; across the stop every
    message on the hub's inbox ends in its records exactly once (parked: none is sealed to the hub)."""
    with broker() as address:
        prefix = f"w{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
            "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "50",
            "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": prefix,
        }
        hub_dir = tmp_path / "hub"
        done = subprocess.run(
            [FLAGLEDGER, "init", "--role", "hub", "--data-dir", str(hub_dir)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        config_path = hub_dir / "config.json"
        config = json.loads(config_path.read_text())
        config.setdefault("linkage", {})["open_workers"] = 2
        config_path.write_text(json.dumps(config))

        settings = KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
        topics = Topics(prefix)
        ensure_inboxes(settings, topics, [HUB])
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=address, acks="all")
        for i in range(MESSAGES):  # bytes no sender sealed: each refused while opening, parked in its place
            producer.send(topics.inbox(HUB), f"not a sealed message {i}".encode() * 4)
        producer.flush()
        producer.close()

        log = tmp_path / "hub.log"
        # stopped while its workers are still starting: the stop that ran out the local network's grace
        proc = _start(env, hub_dir, log)
        children = _spawned(proc, 90)
        assert len(children) >= 2, log.read_text()
        code, took, out = _stop(proc)
        assert code == 0, log.read_text()
        assert took < STOP_WITHIN, f"stopped in {took:.1f} s"
        assert json.loads(out.strip().splitlines()[-1])["stopped"] == "hub"
        _, alive = psutil.wait_procs(children, timeout=3)
        assert not alive, f"left behind: {[(c.pid, _cmdline(c)) for c in alive]}"

        # restarted: every message ends in the hub's records once, then stopped with its workers idle
        again = _start(env, hub_dir, log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and again.poll() is None and _parked(hub_dir) < MESSAGES:
            time.sleep(0.2)
        children = _spawned(again, 30)
        time.sleep(3)  # the workers ready and idle
        code, took, out = _stop(again)
        assert code == 0, log.read_text()
        assert took < STOP_WITHIN, f"stopped in {took:.1f} s"
        _, alive = psutil.wait_procs(children, timeout=3)
        assert not alive, f"left behind: {[(c.pid, _cmdline(c)) for c in alive]}"
        assert _parked(hub_dir) == MESSAGES  # none lost across the stop, none handed again and parked twice


def _spawned(proc: subprocess.Popen[str], within: float) -> list[psutil.Process]:
    """The hub's children once two spawned processes (its opening workers) are among them."""
    hub = psutil.Process(proc.pid)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        children = _workers(hub)
        if sum("spawn_main" in " ".join(_cmdline(c)) for c in children) >= 2:
            return children
        time.sleep(0.05)
    return []


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []
