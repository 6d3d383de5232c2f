"""The hub and the portal as running roles: ``flagledger node`` processes on their own data directories, over the
Tansu broker, with agencies driven in-process by ``AgencyEnd`` — set up only through the command line
(``init --role``, ``linkage directory export|import``), read only through ``portal page``.

Threats: the perpetrator at the portal (a record naming who asked about X hidden once X is protected, with no
holder named — by ``portal page`` and over HTTP with X's card; a certificate forged for X's number refused; X's
proxy refused while the protection applies), the shell user (each role's keys and database
in its own directory, 0600, and a node started with the wrong role refused), and an administrator stopping the
roles (SIGTERM: a clean stop with what each did).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.directory import Directory
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import public_from_hex, public_hex
from ledger.linkage.transport import Topics
from ledger.log.signing import KeyRecord
from ledger.portal.cards import CardIssuer
from tests.support.hub_world import START, A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.tansu import broker, free_port

pytestmark = pytest.mark.kafka

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"


def run(env: dict[str, str], *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def last_json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with broker() as where:
        yield where


def test_hub_and_portal_processes_serve_a_page(address: str, tmp_path: Path) -> None:
    """Perpetrator at the portal, shell user, administrator stopping the roles (see the module)."""
    prefix = f"r{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
        "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "50",
        "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": prefix,
    }
    hub_dir, portal_dir = tmp_path / "hub", tmp_path / "portal"
    run(env, "init", "--role", "hub", "--data-dir", str(hub_dir))
    run(env, "init", "--role", "portal", "--data-dir", str(portal_dir))
    assert (hub_dir / "hub.sqlite").stat().st_mode & 0o777 == 0o600
    assert not (hub_dir / "ledger.sqlite").exists()  # no agency's ledger in a hub's directory
    hub_entry = last_json(run(env, "linkage", "directory", "export", "--data-dir", str(hub_dir)).stdout)
    portal_entry = last_json(run(env, "linkage", "directory", "export", "--data-dir", str(portal_dir)).stdout)
    assert set(hub_entry) == {"party", "key_id", "public_hex", "valid_from", "sealing_public_hex", "vrf_public_hex"}
    portal_fields = {"party", "key_id", "public_hex", "valid_from", "sealing_public_hex"}
    assert set(portal_entry) == portal_fields | {"delivery_hex"}  # its wire keys' delivery key (docs/erasure.md)

    # the agencies publish their keys too (their node's export is the agency side's); the hub takes all
    cast = Cast.of(A, B, C, D)
    agency_entries = [
        {
            "party": name,
            "key_id": k.signer.key_id,
            "public_hex": k.signer.public_raw.hex(),
            "valid_from": START.isoformat(),
            "sealing_public_hex": public_hex(k.sealing.public_key()),
            "kind": "municipality",  # the agency's claim; the hub's administrator vouches for it by importing
        }
        for name, k in cast.agencies.items()
    ]
    (tmp_path / "for-hub.json").write_text(json.dumps([*agency_entries, portal_entry]))
    (tmp_path / "hub.json").write_text(json.dumps(hub_entry))
    assert last_json(
        run(env, "linkage", "directory", "import", str(tmp_path / "for-hub.json"), "--data-dir", str(hub_dir)).stdout
    ) == {"imported": [A, B, C, D, PORTAL], "kinds": {**dict.fromkeys((A, B, C, D), "municipality"), PORTAL: None}}
    # the portal takes the hub's entry and the agencies' (their signatures on the records' sealed contents)
    (tmp_path / "for-portal.json").write_text(json.dumps([hub_entry, *agency_entries]))
    run(env, "linkage", "directory", "import", str(tmp_path / "for-portal.json"), "--data-dir", str(portal_dir))
    wrong = run(env, "node", "--role", "portal", "--data-dir", str(hub_dir), ok=False)
    assert wrong.returncode == 7 and "hub node" in wrong.stderr
    # the card issuer (J-LIS's stand-in) the portal trusts for sign-in over HTTP: its key made here, never kept
    jlis = CardIssuer("J-LIS")
    trusted = run(
        env,
        "portal",
        "trust-issuer",
        "--issuer",
        "J-LIS",
        "--public-hex",
        jlis.public_hex,
        "--data-dir",
        str(portal_dir),
    )
    assert last_json(trusted.stdout) == {"trusted": ["J-LIS"]}
    http_port = free_port()

    settings = KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(prefix)
    ensure_inboxes(settings, topics, [HUB, PORTAL, A, B, C, D])
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("hub", "portal")}
    procs = {
        "hub": subprocess.Popen(
            [FLAGLEDGER, "node", "--role", "hub", "--data-dir", str(hub_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=logs["hub"],
            text=True,
        ),
        "portal": subprocess.Popen(
            [FLAGLEDGER, "node", "--data-dir", str(portal_dir), "--serve-port", str(http_port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=logs["portal"],
            text=True,
        ),
    }
    directory = Directory()
    directory.add(
        KeyRecord(HUB, hub_entry["key_id"], hub_entry["public_hex"], START),
        public_from_hex(hub_entry["sealing_public_hex"]),
    )
    directory.add(  # the agencies seal their records' contents to the portal
        KeyRecord(PORTAL, portal_entry["key_id"], portal_entry["public_hex"], START),
        public_from_hex(portal_entry["sealing_public_hex"]),
    )
    ends = {n: AgencyEnd(cast.agencies[n], KafkaTransport(settings, n, topics), directory) for n in (A, B)}
    try:
        x = individual_number()
        ends[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", "2026-12-07T12:00:00+09:00")
        page = last_json(run(env, "portal", "page", "--card", x, "--wait", "60", "--data-dir", str(portal_dir)).stdout)
        assert [(r["provider"], r["querier"], r["outcome"]) for r in page["records"]] == [(B, C, "provided")]
        assert page["note"] is None

        ends[A].flag(x, "NON_DISCLOSURE", "set")
        ends[B].record(x, D, PROCEDURE, ITEM, INFO, "provided", "2026-12-07T13:00:00+09:00")
        deadline = time.monotonic() + 60
        while True:
            page = last_json(run(env, "portal", "page", "--card", x, "--data-dir", str(portal_dir)).stdout)
            if page["note"] is not None or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert page == {"records": [], "note": HIDDEN_NOTE}  # both records hidden, no holder (A) named
        proxy = run(env, "portal", "page", "--card", x, "--viewer", "proxy", "--data-dir", str(portal_dir), ok=False)
        assert proxy.returncode == 4 and "[proxy_refused]" in proxy.stderr and A not in proxy.stderr
        assert x not in proxy.stderr

        # the same page over HTTP, by X's card (issue 19: ledger.api.portal); a number without its card: nothing
        at = datetime.now(UTC)
        sealing = public_from_hex(portal_entry["sealing_public_hex"])
        card = jlis.issue(x, sealing, at - timedelta(days=1), at + timedelta(days=30))
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}/portal/v1", timeout=10) as web:
            challenge = bytes.fromhex(web.post("/challenges").json()["challenge"])
            body = {
                "challenge": challenge.hex(),
                "certificate": card.certificate.encode(),
                "signature": card.sign(challenge),
            }
            token = web.post("/sign-in", json=body).json()["token"]
            shown = web.get("/page", headers={"Authorization": f"Bearer {token}"})
            assert shown.status_code == 200 and shown.json() == {"records": [], "note": HIDDEN_NOTE}
            forged = CardIssuer("J-LIS").issue(x, sealing, at - timedelta(days=1), at + timedelta(days=30))
            challenge = bytes.fromhex(web.post("/challenges").json()["challenge"])
            body = {
                "challenge": challenge.hex(),
                "certificate": forged.certificate.encode(),
                "signature": forged.sign(challenge),
            }
            refused = web.post("/sign-in", json=body)
            assert refused.status_code == 401 and refused.json()["code"] == "card_certificate"
    finally:
        for end in ends.values():
            end.transport.close()
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        stopped = {name: proc.communicate(timeout=60)[0] for name, proc in procs.items()}
        for f in logs.values():
            f.close()
    assert procs["hub"].returncode == 0 and procs["portal"].returncode == 0
    hub_done, portal_done = last_json(stopped["hub"]), last_json(stopped["portal"])
    assert hub_done["stopped"] == "hub" and hub_done["applied"] >= 5 and hub_done["pages_owed"] >= 2
    # sent: the card's registration and the portal's first delivery key's signed notice (docs/erasure.md)
    assert portal_done["stopped"] == "portal" and portal_done["kept"] >= 2 and portal_done["sent"] == 2
    assert "the hub's loop starts" in (tmp_path / "hub.log").read_text()
