"""`flagledger serve` as an operator starts it: a real process on a loopback port, a token from
`flagledger staff token`, the API and the console answering, SIGTERM stopping it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_demo import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _enrolled_with_token(data: str) -> str:
    """A fresh node with one counter clerk; returns the clerk's CLI-issued token."""
    assert (
        run_cli("init", "--data-dir", data, "--agency", "131016", "--name", "A市", "--kind", "municipality").returncode
        == 0
    )
    assert (
        run_cli("staff", "enroll", "--data-dir", data, "--as", "131016/admin", "tanaka", "--role", "counter").returncode
        == 0
    )
    issued = run_cli("staff", "token", "--data-dir", data, "--as", "131016/tanaka", "--ttl", "10m")  # their own
    assert issued.returncode == 0, issued.stderr
    return str(json.loads(issued.stdout)["token"])


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    """``flagledger ARGS`` as a real process, with none of this shell's FLAGLEDGER_ settings but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from ledger.cli.main import main; sys.exit(main())", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **env},
    )


def _wait_until_serving(base: str, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(f"{base}/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"nothing serves {base}") from None
            time.sleep(0.2)


def test_serve_answers_with_a_cli_token_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    token = _enrolled_with_token(data)
    port = _free_port()
    proc = _start("serve", "--data-dir", data, "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base, proc, 30)
        me = httpx.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["staff"] == "tanaka"
        assert httpx.get(f"{base}/api/v1/whoami").status_code == 401
        assert httpx.get(f"{base}/console/login").status_code == 200
        counter = httpx.post(
            f"{base}/api/v1/queries/counter",
            json={"subject": "123456789018"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert counter.status_code == 200 and counter.json()["protection"]["protected"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "123456789018" not in out + err, "an individual number never reaches the server's log"


@pytest.mark.kafka
def test_the_node_process_serves_the_api_beside_replication_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    """`flagledger node --serve-port` answers API calls while its loop relays and projects; SIGTERM stops both."""
    from tests.support.tansu import broker

    data = str(tmp_path / "node")
    token = _enrolled_with_token(data)
    port = _free_port()
    with broker() as bootstrap:
        proc = _start(
            "node",
            "--data-dir",
            data,
            "--serve-port",
            str(port),
            FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS="6000",
            FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS="1000",
            FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS="10000",
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_serving(base, proc, 60)
            deadline = time.monotonic() + 60
            me = httpx.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["staff"] == "tanaka"
            status = Path(data) / "node-status.json"
            while not status.exists():  # the replication loop runs beside the server
                assert time.monotonic() < deadline and proc.poll() is None, "the node loop did not run"
                time.sleep(0.2)
            state = json.loads(status.read_text())
            assert state["relay_position"] >= 1
            # its views are caught up by a second process of the node, which goes when the node goes
            assert (state["projections"], state["projections_restarts"]) == ("process", 0)
            children = psutil.Process(proc.pid).children(recursive=True)
            follower = [c for c in children if "ledger.runtime.follower" in " ".join(c.cmdline())]
            assert len(follower) == 1, [c.cmdline() for c in children]
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not follower[0].is_running() or follower[0].status() == psutil.STATUS_ZOMBIE
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/openapi.json", timeout=1)


def test_serve_on_a_busy_port_says_so_before_claiming_to_serve(tmp_path: Path) -> None:
    """Defends the operator (the administrator) from a server that reports "serving" and is not: a busy port
    is a configuration error (exit 7) named before anything else is said."""
    data = str(tmp_path / "node")
    _enrolled_with_token(data)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start("serve", "--data-dir", data, "--port", str(port))
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, err
    assert "cannot listen on 127.0.0.1:" in err and "another process is listening there" in err
    assert "serving" not in err and "Traceback" not in err
