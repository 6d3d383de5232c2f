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

from tests.e2e.test_demo import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_with_a_cli_token_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    assert run_cli("init", "--data-dir", data, "--agency", "131016", "--name", "A市", "--kind",
                   "municipality").returncode == 0
    assert run_cli("staff", "enroll", "--data-dir", data, "--as", "131016/admin", "tanaka", "--role",
                   "counter").returncode == 0
    issued = run_cli("staff", "token", "--data-dir", data, "--as", "131016/admin", "tanaka", "--ttl", "10m")
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["token"]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ledger.cli.main import main; sys.exit(main())",
         "serve", "--data-dir", data, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("flagledger serve did not come up") from None
                time.sleep(0.2)
        me = httpx.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["staff"] == "tanaka"
        assert httpx.get(f"{base}/api/v1/whoami").status_code == 401
        assert httpx.get(f"{base}/console/login").status_code == 200
        counter = httpx.post(f"{base}/api/v1/queries/counter", json={"subject": "123456789018"},
                             headers={"Authorization": f"Bearer {token}"})
        assert counter.status_code == 200 and counter.json()["protection"]["protected"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "123456789018" not in out + err, "an individual number never reaches the server's log"
