"""`flagledger demo` — the newcomer's first command — plays the seed and is itself a leak check."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.cli import demo
from ledger.cli.demo_story import demo_password
from projections.verified import VerifiedState
from tests.support.staff import activation, cli_env


def run_cli(
    *args: str, extra_env: dict[str, str] | None = None, passwords: Callable[[str, str], str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own; acting ``--as`` a member of the test cast (``passwords``: another cast's,
    e.g. the demo's), with that person's password (FLAGLEDGER_PASSWORD, as a script gives it: the command signs
    them in for itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_") or k == "FLAGLEDGER_CONFIG_DIR"}
    env = cli_env(args, env, passwords) | (extra_env or {})
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from ledger.cli.main import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    follow = activation(args, done.stdout) if done.returncode == 0 else None
    if follow is not None:  # the person told their enrolment code activates it (tests/support/staff.py)
        assert run_cli(*follow, passwords=passwords).returncode == 0
    return done


def test_the_demo_shows_the_leaks_before_protection_and_none_after(tmp_path: Path) -> None:
    """Perpetrator reading the portal, the counter's answers and as proxy, and asking about the child: before the
    flags Y learns B; after, no view names B or C — through the companion K and X's handover to C as well."""
    proc = run_cli("demo", "--data-dir", str(tmp_path / "demo"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    before, _, after = text.partition("Intake, approvals and flag setting at B")
    assert "B市 (131024) ⚠LEAK" in before, "without flags, Y learns B"
    assert "⚠LEAK" not in after
    assert "protection holds at C with no flag set there" in after and "🔒" in after
    assert "Companion: X's child K, attached to X's case, is held like X" in after
    assert "Handover: X's move to C is recorded; C takes over through its own chain" in after
    handed = r"\| X +\| \d{4}-\d\d-\d\d \| NON_DISCLOSURE, NO_AUTO_RESPONSE \| \(not shown\) 🔒"
    assert re.search(handed, after), "C is asked to take over both flags, not told who held them"
    assert "OK:" in text
    assert (tmp_path / "demo" / "config.json").exists()


def test_the_demo_refuses_a_data_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    proc = run_cli("demo", "--data-dir", str(tmp_path / "used"))
    assert proc.returncode == 2 and "not empty" in proc.stderr


def test_every_protected_step_is_checked_from_the_views_output(tmp_path: Path) -> None:
    result = demo.run_demo(tmp_path / "d", emit=lambda step: None)
    assert result.ok and result.seconds < 30
    protected = [s for s in result.steps if s.protected]
    assert len(protected) >= 6 and not any(s.leaks or s.failed for s in protected)
    assert any(s.leaks for s in result.steps if not s.protected), "the unprotected steps show the leaks"


def test_the_demo_fails_when_a_view_stops_hiding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage the portal filter: the demo must notice from what the views return, and fail."""
    real = VerifiedState._person_now
    monkeypatch.setattr(
        VerifiedState, "_person_now", lambda self, subject: dataclasses.replace(real(self, subject), nd_cutoff="")
    )
    result = demo.run_demo(tmp_path / "d", emit=lambda step: None)
    assert not result.ok
    leaking = [s.title for s in result.steps if s.protected and s.leaks]
    assert any("Case 1 with flags" in t for t in leaking)


def test_the_view_commands_read_the_demo_node(tmp_path: Path) -> None:
    import json

    def demo_cli(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, extra_env=extra_env, passwords=demo_password)

    data = tmp_path / "d"
    assert demo.run_demo(data, emit=lambda step: None).ok
    proc = demo_cli("view", "nationwide", "--data-dir", str(data), "--as", "131032/counter", "--subject", demo.X_NUMBER)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["protected"] is False and seen["holders"] is None, "released at the end of the demo"
    # the portal reads through its own system account, signed in with its own secret (issue 18)
    proc = demo_cli("system", "enroll", "portal", "--kind", "portal", "--as", "131016/admin", "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr
    secret = json.loads(proc.stdout)["secret"]
    portal = ("view", "portal", "--data-dir", str(data), "--viewer", demo.Y_NUMBER, "--subject", demo.Y_NUMBER)
    proc = demo_cli(*portal, "--as", "131016/portal", extra_env={"FLAGLEDGER_SYSTEM_SECRET": secret})
    assert proc.returncode == 0, proc.stderr
    assert [r["querier"] for r in json.loads(proc.stdout)["records"]] == ["131032"], "only the post-release record"
    # every view at the log's head (before the refused attempts below, whose recorded failures a later command
    # projects)
    proc = demo_cli("view", "positions", "--data-dir", str(data))
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["projection"] for r in rows} >= {"flag_state", "portal", "work_queues", "timeline"}
    assert all(r["behind"] == 0 for r in rows), rows
    # a counter clerk, or the portal's name without its secret, is refused (exit 4) and shown nothing
    for who, env in (("131032/counter", {}), ("131016/portal", {"FLAGLEDGER_SYSTEM_SECRET": "fls1_guess"})):
        proc = demo_cli(*portal, "--as", who, extra_env=env)
        assert proc.returncode == 4 and proc.stdout == "", (who, proc.stderr)
    proc = demo_cli(
        "view",
        "timeline",
        "--data-dir",
        str(data),
        "--as",
        "131016/counter",
        "--subject",
        demo.X_NUMBER,
        "--purpose",
        "curious",
    )
    assert proc.returncode == 4, "only auditors read timelines"
