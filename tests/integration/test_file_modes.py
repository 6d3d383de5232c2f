"""Everything a node writes is its operator's alone: files 0600, directories 0700, whatever the umask.

Threat: **an insider with a shell on the node's machine** (another account, a service sharing the host) reads
the databases, their SQLite ``-wal``/``-shm`` files, an audit report or an exported checkpoint, or writes to the
views. Before this round ``ledger.sqlite`` and ``views.sqlite`` were created 0644 in a 0755 directory and audit
reports were world-readable (issue 16). Each story runs under umask 022, the usual default, so nothing here
passes because of the umask; the CLI sets its own (077) on top.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.audit.report import audit_report
from ledger.cli.demo_story import demo_password
from ledger.runtime.bootstrap import AgencySpec, init_node, open_node
from tests.conftest import enrol_standard_staff
from tests.support.people import individual_number

A, B = "131016", "131024"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` (itself included) whose mode is not 0600 / 0700."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        want = 0o700 if path.is_dir() else 0o600
        if mode != want:
            wrong[str(path.relative_to(root.parent))] = oct(mode)
    return wrong


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}
    if "--as" in args:  # the demo cast's password (ledger.cli.demo_story.demo_password)
        agency, _, who = args[args.index("--as") + 1].partition("/")
        env["FLAGLEDGER_PASSWORD"] = demo_password(agency, who)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from ledger.cli.main import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_node_s_files_are_private_after_init_and_a_workflow_with_its_databases_open(tmp_path: Path) -> None:
    """Insider with a shell on the machine: databases, WAL and shared-memory files, keys, config — none readable."""
    node = init_node(tmp_path / "node", [AgencySpec(A, "A市", "municipality"), AgencySpec(B, "B市", "municipality")])
    try:
        enrol_standard_staff(node)
        x = individual_number()
        rid = node.app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"])
        node.app.approve_request(Actor(B, "apr"), rid)
        node.app.execute_request(Actor(B, "op"), rid)
        node.app.request_provision(
            Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        node.projector.catch_up()
        names = {p.name for p in (tmp_path / "node").iterdir()}
        assert {"ledger.sqlite-wal", "views.sqlite-wal", "ledger.sqlite-shm", "views.sqlite-shm"} <= names
        assert modes(tmp_path / "node") == {}
        report = tmp_path / "report"
        audit_report(node, Actor(B, "aud"), datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC), report)
        assert len(list(report.iterdir())) >= 8 and modes(report) == {}, "the report names people"
    finally:
        node.close()


def test_an_older_data_directory_is_tightened_when_the_node_opens_it(tmp_path: Path) -> None:
    """Insider with a shell on the machine, against a data directory made before this round (0755, 0644)."""
    init_node(tmp_path / "node", [AgencySpec(A, "A市", "municipality")]).close()
    (tmp_path / "node").chmod(0o755)
    for name in ("ledger.sqlite", "views.sqlite", "config.json"):
        (tmp_path / "node" / name).chmod(0o644)
    open_node(tmp_path / "node").close()
    assert modes(tmp_path / "node") == {}


def test_the_cli_writes_reports_exports_and_replays_privately(tmp_path: Path) -> None:
    """Insider with a shell on the machine: what `init`, the demo, `audit report`, `audit checkpoint --export`
    and `audit replay` leave behind."""
    data = tmp_path / "demo"
    assert cli("demo", "--data-dir", str(data)).returncode == 0
    enrolled = cli("staff", "enroll", "--data-dir", str(data), "--as", f"{B}/admin", "aud2", "--role", "auditor")
    assert enrolled.returncode == 0, enrolled.stderr
    code = json.loads(enrolled.stdout)["enrolment_code"]  # aud2 activates it, so that they can sign in
    assert cli("staff", "activate", "--data-dir", str(data), "--as", f"{B}/aud2", "--code", code).returncode == 0
    now = datetime.now(UTC)
    done = cli(
        "audit",
        "report",
        "--data-dir",
        str(data),
        "--as",
        f"{B}/aud2",
        "--quiet",
        "--from",
        (now - timedelta(hours=1)).isoformat(),
        "--to",
        (now + timedelta(minutes=1)).isoformat(),
        "--out",
        str(tmp_path / "reports" / "2026-12"),
    )
    assert done.returncode == 0, done.stderr
    exported = cli("audit", "checkpoint", "--data-dir", str(data), "--export", str(tmp_path / "cp.json"))
    assert exported.returncode == 0, exported.stderr
    replayed = cli("audit", "replay", "--data-dir", str(data), "--as", f"{B}/aud2", "--quiet", "--until-position", "10")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout.splitlines()[0])["target"].startswith(f"sqlite:///{data / 'audit'}")
    assert modes(data) == {}
    assert modes(tmp_path / "reports") == {}
    assert (tmp_path / "cp.json").stat().st_mode & 0o777 == 0o600
