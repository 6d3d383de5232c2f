"""The running node checks its views on a schedule and says so in ``node-status.json`` and its metrics.

Threat: **an insider with the data directory** edits the views database of a running node (here: deletes a
flag row and so hides a protection from the holder's own list). The node's scheduled ``audit views`` (a child
process, at start and ``--audit-views-every`` seconds after each run) reports the first differing row in
``node-status.json`` and sets ``flagledger_views_audit_ok`` to 0 and ``flagledger_views_audit_difference`` to 1
within the detection window; once the views are rebuilt the next run reports them equal again.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.cli import demo
from tests.e2e.test_demo import run_cli
from tests.e2e.test_serve import _free_port, _start

pytestmark = pytest.mark.kafka


def _wait(what: str, seconds: float, check: Any) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _last_audit(status: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(status.read_text())
    except (OSError, ValueError):
        return None
    last: dict[str, Any] | None = state.get("audit_views", {}).get("last")
    return last


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_the_node_reports_a_changed_view_row_in_its_status_and_metrics(tmp_path: Path) -> None:
    from tests.support.tansu import broker

    data = tmp_path / "node"
    assert demo.run_demo(data, emit=lambda step: None).ok
    with sqlite3.connect(data / "views.sqlite") as db:  # the insider, before the node starts
        (subject,) = db.execute("SELECT subject FROM agency_flags ORDER BY subject LIMIT 1").fetchone()
        db.execute("DELETE FROM agency_flags WHERE subject = ?", (subject,))
    port = _free_port()
    with broker() as bootstrap:
        proc = _start(
            "node",
            "--data-dir",
            str(data),
            "--audit-views-every",
            "1",
            "--metrics-port",
            str(port),
            "--projections",
            "inline",
            FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS="6000",
            FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS="1000",
            FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS="10000",
        )
        try:
            status = data / "node-status.json"
            last = _wait("the first scheduled check", 90, lambda: _last_audit(status))
            assert last["result"] == "different" and last["exit_code"] == 6, last
            diff = last["first_difference"]
            assert diff["table"] == "agency_flags" and diff["kind"] == "missing" and diff["key"]["subject"] == subject
            assert status.stat().st_mode & 0o777 == 0o600
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert _metric(metrics, "flagledger_views_audit_ok") == 0.0
            assert _metric(metrics, "flagledger_views_audit_difference") == 1.0
            assert (_metric(metrics, "flagledger_views_audit_last_run_timestamp_seconds") or 0) > time.time() - 120
            # the operator rebuilds the views; the next scheduled run finds them equal again
            assert run_cli("projections", "rebuild", "--data-dir", str(data)).returncode == 0
            _wait("a check after the rebuild", 90, lambda: (_last_audit(status) or {}).get("result") == "equal")
            _wait(
                "the metric to follow",
                10,
                lambda: (
                    _metric(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, "flagledger_views_audit_ok")
                    == 1.0
                ),
            )
            state = json.loads(status.read_text())
            assert state["audit_views"]["runs"] >= 2 and state["audit_views"]["every_seconds"] == 1.0
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "ALARM: the views differ from a rebuild from the log" in err
    assert not [p.name for p in (data / "audit").glob("views-check-*.sqlite*")], "no scratch left behind"
