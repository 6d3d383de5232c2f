"""The backup and restore procedure of docs/operations.md, end to end: pg_dump an agency's database, restore it
into an empty one, and prove the restore with `flagledger audit verify` and a projection rebuild."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.app import Actor
from tests.conftest import A
from tests.support.postgres import temp_database

pytestmark = pytest.mark.postgres
FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))


def flagledger(data_dir: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLAGLEDGER_DATABASE_URL": url}
    return subprocess.run([FLAGLEDGER, "--data-dir", str(data_dir), *args], env=env, capture_output=True, text=True)


def test_a_restored_database_verifies_and_rebuilds(make_node, person, tmp_path: Path) -> None:
    if not shutil.which("pg_dump"):
        pytest.skip("pg_dump is not installed")
    with temp_database() as original, temp_database() as restored:
        node = make_node(database_url=original)
        for _ in range(3):
            rid = node.app.request_flags(Actor(A, "req"), person(), ["NO_AUTO_RESPONSE"])
            node.app.approve_request(Actor(A, "apr"), rid)
            node.app.execute_request(Actor(A, "op"), rid)
        node.projector.catch_up()
        head = node.app.max_position()
        dump = tmp_path / "agency.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", original], check=True)
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored}", str(dump)], check=True)

        verified = flagledger(node.config.data_dir, restored, "audit", "verify", "--quiet")
        assert verified.returncode == 0, verified.stderr
        assert f'"events": {head}' in verified.stdout
        rebuilt = flagledger(node.config.data_dir, restored, "projections", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr

        # a restore that lost or altered a row is caught by the same check
        import psycopg

        with psycopg.connect(restored, autocommit=True) as conn:
            conn.execute("DELETE FROM flagledger_events WHERE notification_id = %s", (head - 1,))
        broken = flagledger(node.config.data_dir, restored, "audit", "verify", "--quiet")
        assert broken.returncode == 6, broken.stdout + broken.stderr
