"""``flagledger staff``: the issue's administrator paths from the console, each refused with a clear error and
exit code (threats: **an administrator** acting alone, **a shell user** typing ``--as``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.staff import run_in_process

A = "131016"


def run(capsys: pytest.CaptureFixture[str], d: str, *argv: str) -> tuple[int, str, str]:
    """As the person ``--as`` names would run it: their password given, a printed enrolment code activated
    (tests/support/staff.py)."""
    try:
        return run_in_process(["--data-dir", d, *argv], capsys)
    except SystemExit as stop:  # Click's usage errors
        captured = capsys.readouterr()
        return int(stop.code or 0), captured.out, captured.err


@pytest.fixture
def d(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    data = str(tmp_path / "a")
    code, out, _ = run(
        capsys, data, "init", "--agency", A, "--name", "A市", "--kind", "municipality", "--second-admin", "admin2"
    )
    assert code == 0 and json.loads(out)["second_administrator"] == f"{A}/admin2"
    return data


def test_an_administrator_cannot_give_itself_or_a_stand_in_a_duty(d: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Granting itself requester/approver/operator, or enrolling an administrator-approver, exits 5
    (role_conflict); a stand-in approver waits for the second administrator, whom the proposer cannot replace."""
    for role in ("requester", "approver", "operator"):
        code, _, err = run(capsys, d, "staff", "grant-role", "--as", f"{A}/admin", "admin", role)
        assert code == 5 and "[role_conflict]" in err and "separation of duties" in err
    code, _, err = run(
        capsys, d, "staff", "enroll", "--as", f"{A}/admin", "admin3", "--role", "administrator", "--role", "approver"
    )
    assert code == 5 and "[role_conflict]" in err

    code, out, err = run(capsys, d, "staff", "enroll", "--as", f"{A}/admin", "sock", "--role", "approver")
    enrolled = json.loads(out)
    assert code == 0 and enrolled["roles"] == [] and "approve-grant" in err
    (grant,) = enrolled["pending_grants"]
    assert grant["role"] == "approver"
    code, out, _ = run(capsys, d, "staff", "grants", "--as", f"{A}/admin2")
    assert code == 0 and json.loads(out)["grant"] == grant["grant"]
    code, _, err = run(capsys, d, "staff", "approve-grant", "--as", f"{A}/admin", grant["grant"])
    assert code == 5 and "[four_eyes]" in err
    code, _, err = run(capsys, d, "staff", "approve-grant", "--as", f"{A}/sock", grant["grant"])
    assert code == 4
    code, out, _ = run(capsys, d, "staff", "approve-grant", "--as", f"{A}/admin2", grant["grant"], "--note", "ok")
    assert code == 0 and json.loads(out)["status"] == "approved"
    code, _, err = run(capsys, d, "staff", "approve-grant", "--as", f"{A}/admin2", grant["grant"])
    assert code == 5 and "[grant_closed]" in err


def test_grant_role_proposes_and_a_proposal_can_be_rejected(d: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`grant-role` of a privileged role prints the pending grant's id; an unknown id exits 3, a malformed 2."""
    assert run(capsys, d, "staff", "enroll", "--as", f"{A}/admin", "clerk", "--role", "counter")[0] == 0
    code, out, _ = run(capsys, d, "staff", "grant-role", "--as", f"{A}/admin", "clerk", "operator")
    proposal = json.loads(out)
    assert code == 0 and proposal["status"] == "pending" and proposal["proposed"] == "operator"
    code, out, _ = run(capsys, d, "staff", "reject-grant", "--as", f"{A}/admin2", proposal["grant"], "--reason", "no")
    assert code == 0 and json.loads(out)["status"] == "rejected"
    code, out, _ = run(capsys, d, "staff", "grants", "--as", f"{A}/admin", "--all")
    assert code == 0 and json.loads(out)["status"] == "rejected"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert run(capsys, d, "staff", "approve-grant", "--as", f"{A}/admin2", unknown)[0] == 3
    code, _, err = run(capsys, d, "staff", "approve-grant", "--as", f"{A}/admin2", "not-an-id")
    assert code == 2 and "not-an-id" not in err


@pytest.mark.parametrize("ttl", ["inf", "-inf", "nan", "infh", "1e400", "1e300h"])
def test_a_token_lifetime_out_of_range_is_a_clear_error(d: str, capsys, ttl: str) -> None:
    """`staff token --ttl inf` printed a traceback: now exit 2 naming the valid range."""
    code, out, err = run(capsys, d, "staff", "token", "--as", f"{A}/admin", "--ttl", ttl)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "30 seconds" in err and "12 hours" in err.replace("12:00:00", "12 hours")


def test_break_glass_from_the_console(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Threat: a lone administrator making a second one (a stand-in) alone, or break-glass used silently: B has
    one administrator, so its prefecture (hosted here) co-approves with --break-glass and a note, and says so."""
    d = str(tmp_path / "b")
    assert run(capsys, d, "init", "--agency", "131024", "--name", "B市", "--kind", "municipality")[0] == 0
    assert run(capsys, d, "agency", "add", "--agency", "130001", "--name", "東京都", "--kind", "prefecture")[0] == 0
    code, out, _ = run(capsys, d, "staff", "enroll", "--as", "131024/admin", "tanaka", "--role", "administrator")
    (grant,) = json.loads(out)["pending_grants"]
    code, _, err = run(capsys, d, "staff", "approve-grant", "--as", "130001/admin", grant["grant"])
    assert code == 3, "without --break-glass another agency's grant is unknown"
    code, _, err = run(capsys, d, "staff", "approve-grant", "--as", "130001/admin", grant["grant"], "--break-glass")
    assert code == 5 and "note" in err
    code, out, err = run(
        capsys, d, "staff", "approve-grant", "--as", "130001/admin", grant["grant"], "--break-glass", "--note", "called"
    )
    assert code == 0 and json.loads(out)["decided_by"] == "130001/admin (break-glass)" and "break-glass" in err
    code, out, _ = run(capsys, d, "staff", "grants", "--as", "131024/tanaka", "--all")
    assert code == 0 and json.loads(out)["status"] == "approved", "tanaka is an administrator now"


def test_break_glass_with_a_signed_co_approval_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Threat: an administrator alone. The file-based break-glass a prefecture on its own node uses (here P is
    hosted too, so one data directory serves both sides): B's administrator exports the grant, P's administrator
    signs a co-approval with their staff key, B's administrator records it. B's administrator cannot sign one
    (not a prefecture), and the co-approval carries its own note (no --note beside it)."""
    d = str(tmp_path / "b")
    assert run(capsys, d, "init", "--agency", "131024", "--name", "B市", "--kind", "municipality")[0] == 0
    assert run(capsys, d, "agency", "add", "--agency", "130001", "--name", "東京都", "--kind", "prefecture")[0] == 0
    code, out, _ = run(capsys, d, "staff", "enroll", "--as", "131024/admin", "tanaka", "--role", "administrator")
    (grant,) = json.loads(out)["pending_grants"]
    code, out, err = run(capsys, d, "staff", "export-grant", "--as", "131024/admin", grant["grant"])
    exported = json.loads(out)
    assert code == 0 and exported["staff"] == "tanaka" and len(exported["digest"]) == 64 and "co-approve" in err
    grant_file = tmp_path / "grant.json"
    grant_file.write_text(out)

    code, _, err = run(capsys, d, "staff", "co-approve", "--as", "131024/admin", "--grant-file", str(grant_file),
                       "--note", "myself")  # fmt: skip
    assert code == 5 and "[break_glass_refused]" in err
    code, _, err = run(capsys, d, "staff", "co-approve", "--as", "130001/admin", "--note", "called")
    assert code == 2 and "--grant-file" in err
    code, out, _ = run(
        capsys, d, "staff", "co-approve", "--as", "130001/admin", "--grant", grant["grant"], "--agency", "131024",
        "--digest", exported["digest"], "--note", "B's administrator called; confirmed by letter",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["staff"] == "admin"
    code, out, err = run(capsys, d, "staff", "co-approve", "--as", "130001/admin", "--grant-file", str(grant_file),
                         "--note", "B's administrator called; confirmed by letter")  # fmt: skip
    co_file = tmp_path / "co.json"
    co_file.write_text(out)
    assert code == 0 and json.loads(out)["prefecture"] == "130001" and "--break-glass-from" in err

    argv = ["staff", "approve-grant", "--as", "131024/admin", grant["grant"], "--break-glass-from", str(co_file)]
    code, _, err = run(capsys, d, *argv, "--note", "mine")
    assert code == 2 and "--note" in err
    code, out, err = run(capsys, d, *argv)
    assert code == 0 and json.loads(out)["decided_by"] == "130001/admin (break-glass)" and "break-glass" in err
    code, out, _ = run(capsys, d, "staff", "grants", "--as", "131024/tanaka", "--all")
    assert code == 0 and json.loads(out)["status"] == "approved", "tanaka is an administrator now"
