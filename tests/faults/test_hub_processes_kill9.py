"""kill -9 of the hub's leader mid-batch, of the hub while it feeds the portal, and of the portal, as real
processes (issue 19's fault suite on the hub topology): two ``flagledger node --role hub`` processes on one
PostgreSQL database (active/standby by the lease) and ``flagledger node --role portal``, over a Tansu broker,
set up through the command line only; the agencies A (provider), B (protects) and C (asks) are hub-mode nodes
in this process, each with its bridge on its own Kafka transport.

1. hub-1 leads and dies by SIGKILL at ``hub.applied`` (its 5th message applied and committed, the messages it
   owes unsent, its inbox not committed): hub-2, the standby, takes the lease, is handed the batch again, drops
   what hub-1 applied and sends what it owed.
2. hub-2 dies at ``hub.fed`` (the portal's pages owed and committed, not yet sent); hub-3 takes over.
3. The portal dies at ``portal.kept`` (a page kept, its inbox not committed) and restarts.

Then: every flag change, registration, query and answer exactly once at the hub and the agencies, no query
about a protected person answered automatically (``hub_checks.exactly_once``), and the portal shows the
unprotected person's record once and the protected person's page hidden.

Threats: an administrator restarting things or machines failing — not attackers, but the perpetrator's query
about the person B protects must never be answered automatically, whichever process dies when; and the
perpetrator at the portal must not see the record of who asked about the protected person.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.linkage_bridge import LinkageBridge
from consumers.settings import KafkaSettings
from ledger.errors import BrokerUnavailable, StorageError
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_applied, hub_flag_changes
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.transport import Topics
from ledger.runtime.bootstrap import AgencySpec, Node, open_node
from ledger.runtime.config import NodeConfig
from ledger.runtime.linkage import published_entry
from tests.conftest import NodeFactory
from tests.faults.harness import FLAGLEDGER, RUNNING, Victim
from tests.faults.hub_checks import HubWork, exactly_once
from tests.support.hub_world import A, B, C
from tests.support.postgres import temp_database
from tests.support.tansu import broker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.long]  # six processes: ~60-120 s


def cli(env: dict[str, str], *argv: str) -> Any:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None


def role(env: dict[str, str], data_dir: Path, log: Path, faultpoint: str | None = None) -> Victim:
    full = {**env, **({"FLAGLEDGER_FAULTPOINT": faultpoint} if faultpoint else {})}
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [FLAGLEDGER, "node", "--data-dir", str(data_dir)], env=full, stdout=fh, stderr=subprocess.STDOUT
        )
    victim = Victim(proc, log)
    RUNNING.append(victim)
    return victim


@dataclass
class Agencies:
    nodes: dict[str, Node]
    bridges: dict[str, LinkageBridge] = field(default_factory=dict)

    def drive(self, done: Callable[[], bool], seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            for bridge in self.bridges.values():
                try:
                    bridge.push()
                    bridge.pull(timeout_ms=100)
                except (StorageError, BrokerUnavailable):
                    time.sleep(0.2)  # as the agency's loop: retried
        assert done(), "the parties did not finish"


def test_hub_leader_hub_feed_and_portal_killed(make_node: NodeFactory, tmp_path: Path) -> None:
    """Administrator / failing machines (see the module): 0 lost, 0 duplicated, nothing answered automatically."""
    with broker() as address, temp_database("fl_hubkill") as hub_db:
        prefix = f"k{uuid.uuid4().hex[:8]}"
        env = {
            **{k: v for k, v in os.environ.items() if k != "FLAGLEDGER_FAULTPOINT"},
            "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
            "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "50",
            "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": prefix,
            "FLAGLEDGER_MAP_HEAD_EVERY_SECONDS": "1",
            "FLAGLEDGER_DIGESTS_ENABLED": "false",  # each message as decided: the fault points fall mid-batch
        }
        hub_dir, portal_dir = tmp_path / "hub", tmp_path / "portal"
        cli(env, "init", "--role", "hub", "--database-url", hub_db, "--data-dir", str(hub_dir))
        cli(env, "init", "--role", "portal", "--data-dir", str(portal_dir))
        hub_entry = cli(env, "linkage", "directory", "export", "--data-dir", str(hub_dir))
        portal_entry = cli(env, "linkage", "directory", "export", "--data-dir", str(portal_dir))

        nodes: dict[str, Node] = {}
        for code in (A, B, C):
            made = make_node((AgencySpec(code, f"{code}市", "municipality"),), name=code)
            data_dir = made.config.data_dir
            made.close()
            config = NodeConfig.load(data_dir)
            config.linkage = {"mode": "hub", "hub": hub_entry, "portal": portal_entry, "topic_prefix": prefix}
            config.kafka = {"bootstrap_servers": address, "fetch_max_wait_ms": 10, "delivery_timeout_ms": 20000}
            config.save()
            nodes[code] = open_node(data_dir)
        entries = [published_entry(n) for n in nodes.values()]
        (tmp_path / "for-hub.json").write_text(json.dumps([*entries, portal_entry]))
        (tmp_path / "for-portal.json").write_text(json.dumps([hub_entry, *entries]))
        cli(env, "linkage", "directory", "import", str(tmp_path / "for-hub.json"), "--data-dir", str(hub_dir))
        cli(env, "linkage", "directory", "import", str(tmp_path / "for-portal.json"), "--data-dir", str(portal_dir))
        settings = KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
        topics = Topics(prefix)
        ensure_inboxes(settings, topics, [HUB, PORTAL, A, B, C])
        parties = Agencies(nodes)
        opened = [KafkaTransport(settings, code, topics) for code in nodes]
        for transport in opened:
            parties.bridges[transport.party] = LinkageBridge(nodes[transport.party], transport)
        store = open_hub_store(hub_db, "checker")  # reads only: never takes the lease

        def count(table: Any) -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        try:
            hub1 = role(env, hub_dir, tmp_path / "hub-1.log", "hub.applied:5")
            portal = role(env, portal_dir, tmp_path / "portal.log", "portal.kept:1")
            work = HubWork(random.Random(5))
            protected = work.protect(parties, people=2)
            parties.drive(lambda: count(hub_applied) > 0)  # hub-1 leads
            hub2 = role(env, hub_dir, tmp_path / "hub-2.log", "hub.fed:3")  # the standby
            parties.drive(lambda: hub1.proc.poll() is not None, seconds=90)
            assert hub1.wait() == -9, hub1.output()[-2000:]
            parties.drive(lambda: count(hub_flag_changes) == len(work.protected))
            work.ask(parties, protected)
            parties.drive(lambda: hub2.proc.poll() is not None, seconds=90)
            assert hub2.wait() == -9, hub2.output()[-2000:]
            hub3 = role(env, hub_dir, tmp_path / "hub-3.log")
            parties.drive(lambda: work.done(parties))
            exactly_once(parties, store, work)  # type: ignore[arg-type]

            # the portal: the protected person's page hidden, the other's record once, across the portal's death
            x, y = protected[0], work.plain[0]
            pages = subprocess.Popen(
                [FLAGLEDGER, "portal", "page", "--card", y, "--wait", "120", "--data-dir", str(portal_dir)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert portal.wait(120) == -9, portal.output()[-2000:]  # died keeping the first page
            portal = role(env, portal_dir, tmp_path / "portal-2.log")
            out, err = pages.communicate(timeout=150)
            assert pages.returncode == 0, err
            page = json.loads(out.strip().splitlines()[-1])
            assert [(r["provider"], r["querier"], r["outcome"]) for r in page["records"]] == [(A, C, "provided")]
            hidden = cli(env, "portal", "page", "--card", x, "--wait", "120", "--data-dir", str(portal_dir))
            assert hidden == {"records": [], "note": HIDDEN_NOTE}
            for victim in (hub3, portal):
                assert victim.stop(60) == 0, victim.output()[-2000:]
        finally:
            for transport in opened:
                transport.close()
            for node in nodes.values():
                node.close()
            store.close()
