"""``/metrics``, ``/healthz`` and ``/readyz`` of the running roles (issue 19, docs/operations.md): two hub
replicas on one PostgreSQL database, the portal and a witness — ``flagledger node --metrics-port`` processes over
a Tansu broker of this test's own, set up through the command line only.

Threats: the operator must see which hub replica leads and that one is ready — a standby (or a leader whose lease
is gone) must say not ready, and the standby must become ready when the leader dies (kill -9) — and must be able to
read every role's figures before a victim's query is answered wrongly by a stalled hub.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.kafka_transport import ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.transport import Topics
from tests.support.postgres import temp_database
from tests.support.tansu import broker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.long]  # processes starting on a shared machine: ~100 s

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
WITNESS = "139998"


def run(env: dict[str, str], *argv: str) -> Any:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def until(check: Callable[[], bool], seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def gauge(text: str, name: str) -> float | None:
    lines = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(lines[0].split()[1]) if lines else None


def test_one_hub_replica_is_ready_the_standby_takes_over_and_every_role_reports(tmp_path: Path) -> None:
    """Operator of the linkage (see the module): the lease holder is ready with ``flagledger_hub_leader`` 1,
    the standby alive and not ready with 0; after kill -9 of the leader the standby is ready and leads; the
    portal and the witness are ready with their transport up; no figure names a person or a party."""
    with broker() as address, temp_database() as hub_db:
        prefix = f"p{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
            "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "50",
            "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": prefix,
            "FLAGLEDGER_MAP_HEAD_EVERY_SECONDS": "1",
        }
        dirs = {r: tmp_path / r for r in ("hub", "portal", "witness")}
        run(env, "init", "--role", "hub", "--database-url", hub_db, "--data-dir", str(dirs["hub"]))
        run(env, "init", "--role", "portal", "--data-dir", str(dirs["portal"]))
        run(env, "init", "--role", "witness", "--agency", WITNESS, "--data-dir", str(dirs["witness"]))
        entries = {r: run(env, "linkage", "directory", "export", "--data-dir", str(d)) for r, d in dirs.items()}
        (tmp_path / "hub.json").write_text(json.dumps(entries["hub"]))
        (tmp_path / "for-hub.json").write_text(json.dumps([entries["portal"], entries["witness"]]))
        run(env, "linkage", "directory", "import", str(tmp_path / "for-hub.json"), "--data-dir", str(dirs["hub"]))
        for role in ("portal", "witness"):
            run(env, "linkage", "directory", "import", str(tmp_path / "hub.json"), "--data-dir", str(dirs[role]))
        topics = Topics(prefix)
        ensure_inboxes(KafkaSettings(bootstrap_servers=address), topics, [HUB, PORTAL, WITNESS])

        ports = {name: free_port() for name in ("hub-1", "hub-2", "portal", "witness")}
        where = {"hub-1": dirs["hub"], "hub-2": dirs["hub"], "portal": dirs["portal"], "witness": dirs["witness"]}
        logs = {name: (tmp_path / f"{name}.log").open("w") for name in ports}
        procs = {
            name: subprocess.Popen(
                [FLAGLEDGER, "node", "--data-dir", str(where[name]), "--metrics-port", str(ports[name])],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=logs[name],
            )
            for name in ports
        }
        try:
            hubs = ("hub-1", "hub-2")

            def one_leads() -> bool:
                ready = [probe(ports[h], "/readyz")[0] for h in hubs]
                return sorted(ready) == [200, 503]

            assert until(one_leads), [probe(ports[h], "/readyz") for h in hubs]
            leader = next(h for h in hubs if probe(ports[h], "/readyz")[0] == 200)
            standby = next(h for h in hubs if h != leader)
            assert probe(ports[standby], "/healthz")[0] == 200  # alive: it waits for the lease
            lead_text = probe(ports[leader], "/metrics")[1]
            assert gauge(lead_text, "flagledger_hub_leader") == 1
            assert gauge(lead_text, "flagledger_linkage_transport_up") == 1
            assert gauge(lead_text, "flagledger_linkage_inbox_depth") is not None
            assert gauge(lead_text, "flagledger_hub_outbox_owed") is not None
            assert until(lambda: gauge(probe(ports[leader], "/metrics")[1], "flagledger_linkage_map_head_age_seconds")
                         is not None, 30)  # fmt: skip
            assert gauge(probe(ports[standby], "/metrics")[1], "flagledger_hub_leader") == 0

            for role in ("portal", "witness"):
                assert until(lambda r=role: probe(ports[r], "/readyz")[0] == 200, 60), role  # type: ignore[misc]
                text = probe(ports[role], "/metrics")[1]
                assert gauge(text, "flagledger_linkage_transport_up") == 1
                assert WITNESS not in text and "hub-" not in text

            procs[leader].send_signal(signal.SIGKILL)  # the leader dies: its lease with its session
            procs[leader].wait(timeout=30)
            assert until(lambda: probe(ports[standby], "/readyz")[0] == 200, 90)
            assert gauge(probe(ports[standby], "/metrics")[1], "flagledger_hub_leader") == 1
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for f in logs.values():
                f.close()
