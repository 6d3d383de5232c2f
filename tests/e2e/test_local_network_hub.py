"""The linkage's topology on this machine (`network.py up --hub`, as Compose's hub-init, hub-a, hub-b and portal):
three agencies in hub mode, the portal, and the hub as two processes on one database — the lease decides who
sequences, and the standby takes over when the leader stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest

from consumers.broker import wait_for
from tests.e2e.test_local_network import load_network

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
AGENCIES = ("131016", "131024", "SC-TOKYO")
LEASE_LOCK = 0x666C6862  # ledger/hub/sequencer.py: the lease's advisory lock, keyed by the log's name
LEASE_KEY = zlib.crc32(b"hub") & 0x7FFFFFFF


@pytest.fixture
def hub_network(tmp_path: Path) -> Iterator[tuple[ModuleType, Path, dict[str, Any]]]:
    from tests.support.postgres import ensure_server

    ensure_server()
    net = load_network()
    root = tmp_path / "net"
    state = net.up(root, progress=lambda _: None, hub=True, wait=240)
    try:
        yield net, root, state
    finally:
        if (root / "network.json").exists():
            net.down(root, progress=lambda _: None)


def lease_holders(state: dict[str, Any]) -> set[str]:
    """Which hub processes (hub-a, hub-b) hold the lease's advisory lock on the hub's database now."""
    import psycopg

    [db] = [d for d in state["databases"] if d.endswith("_hub")]
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        ports = {
            row[0]
            for row in conn.execute(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = %s)",
                (LEASE_LOCK, LEASE_KEY, db),
            )
        }
    holders = set()
    for service in ("hub-a", "hub-b"):
        pid = state["nodes"][service]["pid"]
        try:
            local = {c.laddr.port for c in psutil.Process(pid).net_connections() if c.raddr and c.raddr.port == 5432}
        except psutil.NoSuchProcess:
            continue
        if local & ports:
            holders.add(service)
    return holders


def test_the_hub_pair_shares_one_lease_and_the_standby_takes_over(hub_network) -> None:
    """Administrator draining a machine, or the leader's machine failing: the agencies start in hub mode with the
    hub's published keys; hub-init imported the portal's and every agency's entry; exactly one of the hub's two
    processes holds the lease at a time; after SIGTERM to the leader the standby holds it, and the stopped
    leader reports what it did."""
    net, root, state = hub_network
    hub_entry = json.loads((root / "registry" / "linkage" / "hub.json").read_text())
    for n in (state["nodes"][c] for c in AGENCIES):
        config = json.loads((Path(n["env"]["FLAGLEDGER_DATA_DIR"]) / "config.json").read_text())
        assert config["linkage"]["mode"] == "hub" and config["linkage"]["hub"] == hub_entry
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}, **state["nodes"]["hub-a"]["env"]}
    listed = subprocess.run([FLAGLEDGER, "linkage", "directory", "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {json.loads(line)["party"] for line in listed.stdout.splitlines()} == {"hub", "portal", *AGENCIES}

    assert wait_for(lambda: len(lease_holders(state)) == 1, 90), "one hub process leads"
    [leader] = lease_holders(state)
    standby = ({"hub-a", "hub-b"} - {leader}).pop()
    net._stop(int(state["nodes"][leader]["pid"]))
    assert wait_for(lambda: lease_holders(state) == {standby}, 60), "the standby took the lease"
    report = (root / f"{leader}.log").read_text().strip().splitlines()[-1]
    assert json.loads(report)["stopped"] == "hub"
    assert psutil.Process(state["nodes"][standby]["pid"]).is_running()
