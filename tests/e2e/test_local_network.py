"""The seed across a real three-agency network started by deploy/local/network.py: the Tansu broker, one
PostgreSQL database per agency, and three `flagledger node` processes configured exactly as in Compose.

Staff act through their own short-lived connections to their agency's database (as a counter application
would); everything between agencies travels through the node processes and the broker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from consumers.broker import wait_for
from ledger.app import Actor
from ledger.runtime.bootstrap import Node, open_node
from projections import views
from tests.integration.test_projections_rebuild import snapshot
from tests.support.staff import enrol

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
A, B, SC = "131016", "131024", "SC-TOKYO"
ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
STAFF = {
    A: {"counter": ["counter"], "rev": ["reviewer"]},
    B: {
        "req": ["requester"],
        "apr": ["approver"],
        "apr2": ["approver"],
        "op": ["operator"],
        "aud": ["auditor"],
        "rev": ["reviewer"],
    },
    SC: {"req": ["requester"]},
}


def load_network() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flagledger_local_network", REPO / "deploy/local/network.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[ModuleType, Path, dict[str, Any]]]:
    from tests.support.postgres import ensure_server

    ensure_server()
    net = load_network()
    root = tmp_path / "net"
    state = net.up(root, progress=lambda _: None)
    try:
        yield net, root, state
    finally:
        if (root / "network.json").exists():
            net.down(root, progress=lambda _: None)


@contextmanager
def staff_node(net: ModuleType, root: Path, code: str) -> Iterator[Node]:
    """Open one agency's node in this process with that node's variables (secrets are read at open)."""
    saved = dict(os.environ)
    os.environ.update(net.environment(root, code))
    try:
        node = open_node(Path(os.environ["FLAGLEDGER_DATA_DIR"]))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield node
    finally:
        node.close()


def metrics(state: dict[str, Any], code: str) -> dict[str, float]:
    port = state["nodes"][code]["env"]["FLAGLEDGER_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def audit_verify(net: ModuleType, root: Path, code: str) -> subprocess.Popen[str]:
    """`flagledger audit verify` as an operator runs it against one node (its variables, its database)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}, **net.environment(root, code)}
    return subprocess.Popen(
        [FLAGLEDGER, "audit", "verify", "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    assert wait_for(check, seconds), f"not within {seconds} s: {what}"


def test_seed_across_three_nodes(network, person, monkeypatch: pytest.MonkeyPatch) -> None:
    net, root, state = network
    # views read the shared pseudonym secret when they run, not only at open
    monkeypatch.setenv("FLAGLEDGER_PSEUDONYM_KEY_FILE", net.environment(root, A)["FLAGLEDGER_PSEUDONYM_KEY_FILE"])
    x = person()
    with staff_node(net, root, A) as a, staff_node(net, root, B) as b, staff_node(net, root, SC) as sc:
        for node, code in ((a, A), (b, B), (sc, SC)):
            # the entrypoint activated the administrator with the mounted password: unlock with the same secret
            admin_password = (
                Path(net.load(root)["nodes"][code]["env"]["AGENCY_ADMIN_PASSWORD_FILE"]).read_text().strip()
            )
            node.app.unlock(code, "admin", admin_password)
            for who, roles in STAFF[code].items():
                enrol(node, Actor(code, "admin"), who, roles)
        subject = a.app.subject(x)
        assert subject == b.app.subject(x) == sc.app.subject(x), "one shared pseudonym secret"

        # before protection: A answers at once and X's portal at A shows the record
        before = a.app.request_provision(
            Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        assert before.status == "answered"
        assert len(views.portal_records(a, x, x).records) == 1

        # the support centre asks B (the municipality where X now lives) to set the flags
        body = sc.app.send_body_request(Actor(SC, "req"), B, x, [NAR, ND])
        queued = lambda: [r.body_request_id for r in views.work_queue(b, Actor(B, "apr")).body_requests]  # noqa: E731
        eventually(lambda: str(body) in queued(), "the support centre's request is in B's queue")

        # B sets both flags with approval, answering the support centre's request
        rid = b.app.request_flags(Actor(B, "req"), x, [NAR, ND], body_request_id=body)
        b.app.approve_request(Actor(B, "apr"), rid)
        b.app.execute_request(Actor(B, "op"), rid)

        # nationwide effect at A: the next request is held, the old record disappears from the portal
        protected = lambda: bool(a.app.flag_state and a.app.flag_state.flags_for(subject))  # noqa: E731
        eventually(protected, "B's flags reach A")
        held = a.app.request_provision(
            Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        assert held.status == "in_progress"
        assert views.portal_records(a, x, x).records == ()
        counter = views.counter_view(a, Actor(A, "counter"), x)
        assert counter.protection.protected and counter.protection.holders is None, "A never learns who protects X"

        # the metrics endpoint of A counts the held request; B hears of A's probe
        eventually(
            lambda: metrics(state, A).get(f'flagledger_held_requests_waiting{{agency="{A}"}}') == 1.0,
            "A's metrics show one held request",
            10,
        )
        m = metrics(state, A)
        for gauge in (
            "flagledger_consumer_lag_messages",
            "flagledger_relay_lag_events",
            "flagledger_parked_messages",
            f'flagledger_reviews_due{{agency="{A}"}}',
            "flagledger_projection_lag_events",
            "flagledger_log_head_position",
        ):
            assert gauge in m, f"{gauge} missing from /metrics"
        assert m["flagledger_parked_messages"] == 0
        # the node signs a checkpoint when it starts (then every --checkpoint-every seconds)
        assert 0 <= m["flagledger_checkpoint_age_seconds"] < 600, "the node's first checkpoint is recent"
        # (B's work queue, not B's timeline: a timeline shows only its reader's agency's events, issue 18)
        eventually(
            lambda: any(p.querier == A for p in views.work_queue(b, Actor(B, "rev")).probes),
            "A's probe about X reaches B",
        )

        # release at B (no other holder) lifts the protection at A
        rel = b.app.request_flags(Actor(B, "req"), x, [NAR, ND], kind="release", explanation="explained")
        b.app.approve_request(Actor(B, "apr"), rel)
        b.app.approve_request(Actor(B, "apr2"), rel)  # the last holder: a second approval (docs/year.md)
        b.app.execute_request(Actor(B, "op"), rel)
        eventually(lambda: not protected(), "the release reaches A")
        after = a.app.request_provision(
            Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        assert after.status == "answered"
        shown = views.portal_records(a, x, x).records
        assert len(shown) == 1 and shown[0].request_id == after.request_id, "only the record after release shows"

    entries = [json.loads(line) for line in (root / "node-b.log").read_text().splitlines() if line.startswith("{")]
    assert any(e.get("logger") == "flagledger.node" and e["message"].startswith("serving /metrics") for e in entries)
    assert any(e.get("logger") == "flagledger.consumers" and "relay: published" in e["message"] for e in entries)

    verifying = {code: audit_verify(net, root, code) for code in (A, B, SC)}  # in parallel: three processes
    for code, proc in verifying.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and '"ok": true' in out, f"audit verify failed at {code}: {err}"
    net.stop(root, progress=lambda _: None)  # no node process catches up while projections are rebuilt
    for code in (A, B, SC):
        with staff_node(net, root, code) as node:
            node.projector.catch_up()
            incremental = snapshot(node)
            node.projector.rebuild()
            assert snapshot(node) == incremental, f"{code}'s projections differ from a rebuild"
