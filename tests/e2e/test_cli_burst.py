"""Fifty staff commands at once on one PostgreSQL database: each opens, runs and records its event.

Each command once held 7-8 connections (the event store's pool opened five, the views engine more), so about
13 at once exhausted the server's 100 and the rest failed with "too many clients". A one-shot command now
keeps one connection per pool, and waits for a slot if the server is full for a moment.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.load import AGENCY, FLAG_REQUESTED, census, cli_env, flagledger, make_cast
from tests.support.postgres import ADMIN_DSN, temp_database

pytestmark = pytest.mark.postgres
COMMANDS = 50


# In the long suite since 2026-12-07: in one of three fresh-clone CI runs of session 9, 30 of the 50 commands
# waited more than 30 s for a connection ("couldn't get a connection after 30.00 sec") on this two-CPU machine;
# the other two runs passed. Measured in session 10: each `flag request` opened its node twice (the command and
# the staff key unlock), 6 connections, not 3 — fixed (tests/e2e/test_cli_connections.py). Still, 50 x 3 is
# over the server's 100, and each command keeps its pools open through two argon2 runs (password check and key
# derivation, ~0.38 s of the ~0.45 s it holds them when warm): a burst on two busy CPUs stretches that past the
# 30 s wait (a run at load average 28-59 from other work failed so, peak 93 connections). To do before it returns:
# unlock before opening the pools, or a one-shot event store pool of one connection.
# Run: bash deploy/dev.sh long tests/e2e/test_cli_burst.py
@pytest.mark.long
def test_fifty_commands_at_once_all_open_and_record(tmp_path: Path) -> None:
    """Defends the administrator's and shell users' record on a busy morning: every command of a burst runs
    and is recorded; none is lost to a full connection table."""
    with temp_database() as url:
        cast = make_cast(tmp_path / "node", url)
        db = url.rsplit("/", 1)[1]
        peak, watching = [0], threading.Event()

        def watch() -> None:  # connections this database holds, sampled through the burst
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                while not watching.is_set():
                    n = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,)).fetchone()
                    peak[0] = max(peak[0], int(n[0]) if n else 0)
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            burst = [
                subprocess.Popen(
                    flagledger(
                        "flag",
                        "request",
                        "--as",
                        f"{AGENCY}/req",
                        "--subject",
                        cast.people[i % len(cast.people)],
                        "--flag",
                        "NON_DISCLOSURE",
                    ),
                    env=cli_env(cast),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i in range(COMMANDS)
            ]
            results = [(p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in burst]
            for p in burst:
                for stream in (p.stdout, p.stderr):
                    if stream is not None:
                        stream.close()
        finally:
            watching.set()
            watcher.join()
        failed = [err.strip()[-300:] for code, err in results if code != 0]
        assert not failed, f"{len(failed)} of {COMMANDS} failed, e.g. {failed[0]}"
        assert census(cast).topics[FLAG_REQUESTED] == COMMANDS
        # never more than the server allows (one command's own count: tests/e2e/test_cli_connections.py)
        assert peak[0] <= 2 * COMMANDS, peak[0]
