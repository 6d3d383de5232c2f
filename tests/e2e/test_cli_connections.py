"""One signed staff command (``flag request``) on PostgreSQL opens its node once: the event store's pool and the
views' engine, three connections at most, however many helpers of the command ask for the node.

Defends the administrator's and shell users' record on a busy morning (the threat model's administrator and shell
user): ``flag request`` opened the node twice (the command, then the staff key unlock), six connections held to the
end, so a burst of fifty commands filled the server's hundred and commands timed out waiting for one
(tests/e2e/test_cli_burst.py). Every client backend of the command's database is sampled while it runs; the
server's own workers (autovacuum after the cast's set-up) and backends left from the set-up are not the command's.
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
MOST = 3  # the event store's pool (one, and one more for a nested use) and the views' engine


def test_a_signed_command_opens_its_node_once(tmp_path: Path) -> None:
    with temp_database() as url:
        cast = make_cast(tmp_path / "node", url)
        db = url.rsplit("/", 1)[1]
        seen: set[int] = set()
        done = threading.Event()

        def clients() -> set[int]:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                rows = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid()",
                    (db,),
                ).fetchall()
            return {int(pid) for (pid,) in rows}

        before = clients()
        ready = threading.Event()

        def watch() -> None:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                while not done.is_set():
                    rows = admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                        "AND pid <> pg_backend_pid()",
                        (db,),
                    ).fetchall()
                    seen.update(int(pid) for (pid,) in rows)
                    ready.set()
                    time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        ready.wait(10)
        try:
            command = flagledger(
                "flag", "request", "--as", f"{AGENCY}/req", "--subject", cast.people[0], "--flag", "NON_DISCLOSURE"
            )
            run = subprocess.run(command, env=cli_env(cast), capture_output=True, text=True, timeout=120)
        finally:
            done.set()
            watcher.join()
        assert run.returncode == 0, run.stderr[-500:]
        assert census(cast).topics[FLAG_REQUESTED] == 1
        seen -= before
        assert 1 <= len(seen) <= MOST, f"one command used {len(seen)} connections"
