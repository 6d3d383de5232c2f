"""Municipal staff drive the ledger from the console; bad input gets a clear error and a telling exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ledger.cli.main import cli, main
from tests.support.people import individual_number
from tests.support.staff import run_in_process


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_in_process(argv, capsys)


def test_a_flag_is_requested_approved_and_set_from_the_console(tmp_path: Path, capsys) -> None:
    d = str(tmp_path / "b")
    code, out, _ = run(
        capsys,
        "--data-dir",
        d,
        "init",
        "--agency",
        "131024",
        "--name",
        "B市",
        "--kind",
        "municipality",
        "--second-admin",
        "admin2",
    )
    assert code == 0 and json.loads(out)["key_id"].startswith("131024:")
    assert len(json.loads(out)["enrolment_code"]) >= 32  # the first administrator's, shown once (and activated)
    for who, role in (("sato", "requester"), ("suzuki", "approver"), ("takahashi", "operator"), ("ito", "counter")):
        code, out, _ = run(capsys, "--data-dir", d, "staff", "enroll", "--as", "131024/admin", who, "--role", role)
        assert code == 0
        for grant in json.loads(out)["pending_grants"]:  # approver, operator: a second administrator approves
            assert (
                run(capsys, "--data-dir", d, "staff", "approve-grant", "--as", "131024/admin2", grant["grant"])[0] == 0
            )
    x = individual_number()
    code, out, _ = run(
        capsys, "--data-dir", d, "flag", "request", "--as", "131024/sato", "--subject", x, "--flag", "NO_AUTO_RESPONSE"
    )
    rid = json.loads(out)["request_id"]
    code, _, err = run(capsys, "--data-dir", d, "flag", "approve", "--as", "131024/sato", rid)
    assert code == 4 and "approve" in err  # a requester has no approver role
    assert run(capsys, "--data-dir", d, "flag", "approve", "--as", "131024/suzuki", rid)[0] == 0
    code, out, _ = run(capsys, "--data-dir", d, "flag", "execute", "--as", "131024/takahashi", rid)
    assert json.loads(out)["status"] == "executed"
    code, out, _ = run(
        capsys,
        "--data-dir",
        d,
        "provision",
        "request",
        "--as",
        "131024/ito",
        "--provider",
        "131024",
        "--subject",
        x,
        "--item",
        "74",
        "--procedure",
        "児童手当",
        "--info-kind",
        "地方税関係情報",
    )
    assert json.loads(out)["status"] == "in_progress"
    code, out, _ = run(capsys, "--data-dir", d, "audit", "verify", "--quiet")
    assert code == 0 and json.loads(out)["ok"] is True
    assert x not in (tmp_path / "b" / "config.json").read_text()


def test_unknown_ids_bad_arguments_and_missing_data_dirs(tmp_path: Path, capsys) -> None:
    d = str(tmp_path / "a")
    run(
        capsys,
        "--data-dir",
        d,
        "init",
        "--agency",
        "131016",
        "--name",
        "A市",
        "--kind",
        "municipality",
        "--second-admin",
        "admin2",
    )
    code, _, err = run(
        capsys, "--data-dir", d, "flag", "approve", "--as", "131016/admin", "00000000-0000-4000-8000-000000000000"
    )
    assert code in (3, 4)  # admin has no approver role: refused before the lookup
    _, out, _ = run(capsys, "--data-dir", d, "staff", "enroll", "--as", "131016/admin", "apr", "--role", "approver")
    (grant,) = json.loads(out)["pending_grants"]
    run(capsys, "--data-dir", d, "staff", "approve-grant", "--as", "131016/admin2", grant["grant"])
    code, _, err = run(
        capsys, "--data-dir", d, "flag", "approve", "--as", "131016/apr", "00000000-0000-4000-8000-000000000000"
    )
    assert code == 3 and "unknown flag request" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", d, "flag", "approve", "--as", "131016/apr", "not-a-uuid"])
    assert exit_info.value.code == 2
    assert "not a request/case id" in capsys.readouterr().err
    code, _, err = run(
        capsys,
        "--data-dir",
        d,
        "flag",
        "request",
        "--as",
        "131016/admin",
        "--subject",
        "123456789012",
        "--flag",
        "NON_DISCLOSURE",
    )
    assert code in (2, 4)
    code, _, err = run(capsys, "--data-dir", str(tmp_path / "missing"), "agency", "list")
    assert code == 7 and "flagledger init" in err


def _all_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(c: click.Command, prefix: list[str]) -> None:
        if isinstance(c, click.Group):
            for name, sub in c.commands.items():
                walk(sub, [*prefix, name])
        else:
            found.append(prefix)

    walk(cli, [])
    return found


def test_every_command_has_help(capsys) -> None:
    """A shell user: every command, found in Click's own tree, explains itself and takes --data-dir."""
    commands = _all_commands()
    assert ["audit", "verify"] in commands and ["flag", "request"] in commands and ["node"] in commands
    for argv in commands:
        with pytest.raises(SystemExit) as info:
            main([*argv, "--help"])
        assert info.value.code == 0, argv
        shown = capsys.readouterr().out
        assert f"Usage: flagledger {' '.join(argv)} " in shown, argv
        assert "--data-dir" in shown or argv == ["demo"], argv


def test_the_top_level_help_says_what_the_tool_is_and_lists_every_group(capsys) -> None:
    """A shell user's first look (a newcomer): what flagledger is, and every group under a heading; no command
    at all is exit 2 with the same help."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    shown = capsys.readouterr().out
    assert info.value.code == 0
    text = " ".join(shown.split())  # (however the terminal's width wrapped it)
    assert "a signed, event-sourced ledger" in text and "NON_DISCLOSURE" in text and "flagledger demo" in text
    for heading in ("Set-up:", "Daily work:", "Audit and incidents:", "Running a node:", "Trying it:"):
        assert heading in shown
    listed = {line.split()[0] for line in shown.splitlines() if line.startswith("  ") and line.split()}
    assert set(cli.commands) <= listed, set(cli.commands) - listed
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2 and "Usage: flagledger" in capsys.readouterr().err, "no command: the help, exit 2"


def test_the_installed_console_script_honours_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "FLAGLEDGER_DATA_DIR": str(tmp_path / "env")}
    exe = Path(sys.executable).with_name("flagledger")
    subprocess.run(
        [str(exe), "init", "--agency", "131016", "--name", "A", "--kind", "municipality"],
        env=env,
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "env" / "config.json").exists()
    done = subprocess.run([str(exe), "agency", "list"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and '"code": "131016"' in done.stdout


def test_an_administrator_vouches_for_another_agencys_key(tmp_path: Path, capsys) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    run(capsys, "--data-dir", a, "init", "--agency", "131016", "--name", "A市", "--kind", "municipality")
    run(capsys, "--data-dir", b, "init", "--agency", "131024", "--name", "B市", "--kind", "municipality")
    code, out, _ = run(capsys, "--data-dir", b, "key", "list")
    key = json.loads(out.splitlines()[0])

    def trust(agency: str, key_id: str, public: str, valid_from: str) -> tuple[int, str, str]:
        argv = ["--data-dir", a, "agency", "trust", "--as", "131016/admin", "--agency", agency, "--name", agency]
        argv += ["--kind", "municipality", "--key-id", key_id, "--public-key", public, "--valid-from", valid_from]
        return run(capsys, *argv)

    code, _, err = trust("131024", key["key_id"], key["public_hex"], key["valid_from"])
    assert code == 0, err
    assert key["key_id"] in run(capsys, "--data-dir", a, "key", "list")[1]
    code, _, err = trust("131032", "131032:00", "zz", "yesterday")
    assert code == 2 and "ISO 8601" in err
    code, _, err = trust("131032", "131032:00", "zz", key["valid_from"])
    assert code == 6 and "public key" in err
    assert run(capsys, "--data-dir", a, "audit", "verify", "--quiet")[0] == 0  # the refused trust left nothing behind


def test_as_alone_is_no_credential_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threat: a shell user running `flag request/approve/execute --as` someone else (issue 18): without that
    person's password nothing is signed (exit 4), a wrong one is recorded; the person's own password works."""
    d = str(tmp_path / "b")
    run(capsys, "--data-dir", d, "init", "--agency", "131024", "--name", "B市", "--kind", "municipality")
    code, out, _ = run(
        capsys, "--data-dir", d, "staff", "enroll", "--as", "131024/admin", "sato", "--role", "requester"
    )
    assert code == 0 and len(json.loads(out)["enrolment_code"]) >= 32  # shown once, activated by the runner
    argv = ["--data-dir", d, "flag", "request", "--as", "131024/sato", "--subject", individual_number()]
    argv += ["--flag", "NON_DISCLOSURE"]
    from ledger.app.credentials import _UNLOCKED

    _UNLOCKED.pop(("131024", "sato"), None)  # a fresh process: nothing unlocked
    monkeypatch.delenv("FLAGLEDGER_PASSWORD", raising=False)
    assert main(argv) == 4
    assert "[not_signed_in]" in capsys.readouterr().err  # no session, no password: nobody signed in
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", "not sato's password")
    assert main(argv) == 4
    assert "[wrong_password]" in capsys.readouterr().err
    monkeypatch.delenv("FLAGLEDGER_PASSWORD")
    code, out, _ = run(capsys, *argv)  # with sato's own password (tests/support/staff.py)
    assert code == 0 and json.loads(out)["request_id"]
