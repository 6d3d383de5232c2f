"""Create and drop throw-away PostgreSQL databases on the local server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def ensure_server() -> None:
    """Reach the server, starting the machine's cluster if it is down; fail loudly otherwise."""
    for attempt in range(2):
        try:
            with psycopg.connect(ADMIN_DSN, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if attempt == 0:
                subprocess.run(
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
                    shell=True,
                    check=False,
                    capture_output=True,
                )
                time.sleep(2)
    raise RuntimeError("PostgreSQL at 127.0.0.1:5432 is not reachable and could not be started")


@contextmanager
def temp_database(prefix: str = "fl_test") -> Iterator[str]:
    """Yield a postgresql:// URL of a fresh database, dropped afterwards."""
    ensure_server()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
