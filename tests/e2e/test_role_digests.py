"""Digests switched on from the settings in the running roles: ``node --role hub`` and the portal's ``node`` as
processes over Tansu, on the default schedule (``linkage.digests`` unset: on), its tick from the environment.

Threat: the broker operator, reading the raw records of every topic with a plain client. B protects X, C asks A
about X, A files a record for the portal: only A, B, C and the portal are sent anything. After the roles stop,
every inbox topic — the holder's, the provider's, the querier's, D's (a bystander) and the portal's — holds the
same number of records, all of one size; the agencies (in-process, on ``ScheduledTransport``: what an agency
node in hub mode runs) send the hub one record each per round, all of one size; the consultation still reached
B inside its digest, and the portal's page (fed inside a digest) shows A's record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.linkage.agency import AgencyEnd, Inbound
from ledger.linkage.directory import Directory
from ledger.linkage.messages import Consultation, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.scheduled_transport import ScheduledTransport
from ledger.linkage.sealing import public_from_hex, public_hex, read_header
from ledger.linkage.transport import Topics
from ledger.log.signing import KeyRecord
from tests.integration.test_linkage_kafka import raw_records
from tests.support.hub_world import START, A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
SIZE = 16384


def run(env: dict[str, str], *argv: str) -> Any:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with broker() as where:
        yield where


def entry(name: str, cast: Cast) -> dict[str, str]:
    k = cast.agencies[name]
    return {
        "party": name,
        "key_id": k.signer.key_id,
        "public_hex": k.signer.public_raw.hex(),
        "valid_from": START.isoformat(),
        "sealing_public_hex": public_hex(k.sealing.public_key()),
        "kind": "municipality",  # the hub routes no query from or to an agency of no kind
    }


def test_the_running_roles_send_every_inbox_one_digest_per_tick(address: str, tmp_path: Path) -> None:
    prefix = f"g{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
        "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "50",
        "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": prefix,
        "FLAGLEDGER_DIGESTS_EVERY_SECONDS": "0.5",
    }
    env.pop("FLAGLEDGER_DIGESTS_ENABLED", None)  # the default: on
    hub_dir, portal_dir = tmp_path / "hub", tmp_path / "portal"
    run(env, "init", "--role", "hub", "--data-dir", str(hub_dir))
    run(env, "init", "--role", "portal", "--data-dir", str(portal_dir))
    hub_entry = run(env, "linkage", "directory", "export", "--data-dir", str(hub_dir))
    portal_entry = run(env, "linkage", "directory", "export", "--data-dir", str(portal_dir))
    cast = Cast.of(A, B, C, D)
    agencies = [entry(n, cast) for n in (A, B, C, D)]
    (tmp_path / "for-hub.json").write_text(json.dumps([*agencies, portal_entry]))
    (tmp_path / "for-portal.json").write_text(json.dumps([hub_entry, *agencies]))
    run(env, "linkage", "directory", "import", str(tmp_path / "for-hub.json"), "--data-dir", str(hub_dir))
    run(env, "linkage", "directory", "import", str(tmp_path / "for-portal.json"), "--data-dir", str(portal_dir))

    settings = KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(prefix)
    parties = [A, B, C, D]
    ensure_inboxes(settings, topics, [HUB, PORTAL, *parties])
    directory = Directory()
    for e in (hub_entry, portal_entry):
        directory.add(
            KeyRecord(e["party"], e["key_id"], e["public_hex"], START), public_from_hex(e["sealing_public_hex"])
        )
    wires = {
        n: ScheduledTransport(KafkaTransport(settings, n, topics), cast.agencies[n], directory, lambda: START, SIZE)
        for n in parties
    }
    ends = {n: AgencyEnd(cast.agencies[n], wires[n], directory, lambda: START) for n in parties}
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("hub", "portal")}
    procs = {
        name: subprocess.Popen(
            [FLAGLEDGER, "node", *(["--role", "hub"] if name == "hub" else []), "--data-dir", str(where)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=logs[name],
            text=True,
        )
        for name, where in (("hub", hub_dir), ("portal", portal_dir))
    }
    got: dict[str, list[Inbound]] = {n: [] for n in parties}
    rounds = 0

    def round_() -> None:
        nonlocal rounds
        for n in parties:  # every agency's digest to the hub, whatever it did
            wires[n].tick()
        rounds += 1
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            for n in parties:
                got[n] += ends[n].read_inbox(timeout_ms=20)

    try:
        x = individual_number()
        ends[B].flag(x, "NO_AUTO_RESPONSE", "set")
        ends[A].file_person(x)
        round_()
        ends[C].query(x, A, PROCEDURE, ITEM, INFO)
        ends[A].record(x, C, PROCEDURE, ITEM, INFO, "held", "2026-12-07T12:00:00+09:00")
        deadline = time.monotonic() + 60
        while not any(isinstance(i.message, Consultation) for i in got[B]) and time.monotonic() < deadline:
            round_()
        [routed] = [i.message for i in got[A] if isinstance(i.message, RoutedQuery)]
        assert routed.answer == "staff"
        assert sum(isinstance(i.message, Consultation) for i in got[B]) == 1
        assert not any(isinstance(i.message, (Consultation, RoutedQuery)) for i in got[D])  # the map's heads only
        page = run(env, "portal", "page", "--card", x, "--wait", "60", "--data-dir", str(portal_dir))
        assert [(r["provider"], r["querier"], r["outcome"]) for r in page["records"]] == [(A, C, "held")]
        round_()
    finally:
        for w in wires.values():
            w.close()
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        stopped = {name: proc.communicate(timeout=60)[0] for name, proc in procs.items()}
        for f in logs.values():
            f.close()
    assert procs["hub"].returncode == 0 and procs["portal"].returncode == 0
    hub_done = json.loads(stopped["hub"].strip().splitlines()[-1])
    assert hub_done["digests"] >= 5 * 2  # every tick a digest to each of the five inboxes

    inboxes = [topics.inbox(p) for p in (*parties, PORTAL)]
    seen = raw_records(address, [*inboxes, topics.inbox(HUB)])
    counts = {t: len(seen[t]) for t in inboxes}
    assert len(set(counts.values())) == 1 and min(counts.values()) >= 2, counts  # stopped between two ticks
    assert len({len(v) for t in inboxes for v in seen[t]}) == 1
    from_agencies = [m for m in seen[topics.inbox(HUB)] if read_header(m).sender in parties]
    by_sender = {p: sum(read_header(m).sender == p for m in from_agencies) for p in parties}
    assert by_sender == dict.fromkeys(parties, rounds)  # the flag, the query, the record: inside digests
    assert len({len(m) for m in from_agencies}) == 1
