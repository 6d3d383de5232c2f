"""Every command prints what it did on success: a shell user (or a script) sees that a grant, a proxy
registration, a proposal or a policy change took, instead of silence (issue 17); and the figures a command
prints agree with its own progress line.

Threats: **an administrator / shell user** (a change made without any acknowledgement is easily made twice or
believed not made) and **the perpetrator** (the results name people by pseudonym: an individual number typed
is never printed back).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.runtime.bootstrap import open_node
from tests.support.people import individual_number
from tests.support.staff import run_in_process

A = "131016"


def run(capsys: pytest.CaptureFixture[str], d: str, *argv: str) -> tuple[Any, str]:
    """The command's one JSON result (exit 0 asserted) and its stderr."""
    code, out, err = run_in_process(["--data-dir", d, *argv], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1, f"one result line, not {out!r}"
    return json.loads(lines[0]), err


def test_every_change_prints_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An administrator / shell user sees each change acknowledged; the perpetrator's and victim's numbers typed
    into `proxy` are answered with pseudonyms only."""
    d = str(tmp_path / "a")
    run(capsys, d, "init", "--agency", A, "--name", "A市", "--kind", "municipality", "--second-admin", "admin2")
    for who, role in (
        ("req", "requester"),
        ("apr", "approver"),
        ("op", "operator"),
        ("counter", "counter"),
        ("rev", "reviewer"),
        ("temp", "counter"),
    ):
        enrolled, _ = run(capsys, d, "staff", "enroll", "--as", f"{A}/admin", who, "--role", role)
        for grant in enrolled["pending_grants"]:  # approver, operator: the second administrator approves
            approved, _ = run(capsys, d, "staff", "approve-grant", "--as", f"{A}/admin2", grant["grant"])
            assert approved["status"] == "approved" and approved["decided_by"] == "admin2"

    assert run(capsys, d, "staff", "grant-role", "--as", f"{A}/admin", "temp", "auditor")[0] == {
        "staff": f"{A}/temp",
        "granted": "auditor",
    }
    assert run(capsys, d, "staff", "revoke-role", "--as", f"{A}/admin", "temp", "auditor")[0] == {
        "staff": f"{A}/temp",
        "revoked": "auditor",
    }
    assert run(capsys, d, "staff", "deactivate", "--as", f"{A}/admin", "temp")[0] == {"deactivated": f"{A}/temp"}
    assert run(capsys, d, "permission", "grant", "--as", f"{A}/admin", "counter", "audit")[0] == {
        "agency": A,
        "role": "counter",
        "granted": "audit",
    }
    assert run(capsys, d, "permission", "revoke", "--as", f"{A}/admin", "counter", "audit")[0] == {
        "agency": A,
        "role": "counter",
        "revoked": "audit",
    }
    assert run(capsys, d, "policy", "approvals", "--as", f"{A}/admin", "1")[0] == {"agency": A, "approvals_required": 1}

    victim, spouse = individual_number(), individual_number()
    registered, _ = run(capsys, d, "proxy", "register", "--as", f"{A}/req", "--subject", victim, "--proxy", spouse)
    cancelled, _ = run(capsys, d, "proxy", "cancel", "--as", f"{A}/req", "--subject", victim, "--proxy", spouse)
    assert registered["registered"] and cancelled["cancelled"] is True
    assert registered["subject"] == cancelled["subject"] and registered["proxy"] == cancelled["proxy"]
    for shown in (registered, cancelled):
        text = json.dumps(shown)
        assert victim not in text and spouse not in text, "pseudonyms only, never the numbers typed"

    rid = run(capsys, d, "flag", "request", "--as", f"{A}/req", "--subject", victim, "--flag", "NO_AUTO_RESPONSE")[0]
    run(capsys, d, "flag", "approve", "--as", f"{A}/apr", rid["request_id"])
    run(capsys, d, "flag", "execute", "--as", f"{A}/op", rid["request_id"])
    held, _ = run(
        capsys,
        d,
        "provision",
        "request",
        "--as",
        f"{A}/counter",
        "--provider",
        A,
        "--subject",
        victim,
        "--item",
        "74",
        "--procedure",
        "児童手当",
        "--info-kind",
        "地方税関係情報",
    )
    assert held["status"] == "in_progress"
    proposed, _ = run(
        capsys,
        d,
        "provision",
        "propose",
        "--as",
        f"{A}/rev",
        held["request_id"],
        "--decision",
        "refuse",
        "--applicant-check",
        "known_perpetrator",
    )
    assert proposed["request_id"] == held["request_id"] and proposed["proposed"] == "refuse"
    assert "provision approve" in proposed["next"]

    old = run(capsys, d, "key", "list")[0]["key_id"]
    run(capsys, d, "key", "rotate", "--as", f"{A}/admin")
    assert run(capsys, d, "key", "revoke", "--as", f"{A}/admin", old, "--reason", "retired")[0] == {
        "revoked": old,
        "by": f"{A}/admin",
    }


def test_a_rebuild_prints_figures_that_agree_with_its_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shell user (an operator after an upgrade) reading the result: it printed "events": 8 beside its own
    "16/16"; now each figure says what it counts and the log positions agree with the progress line."""
    d = str(tmp_path / "a")
    run(capsys, d, "init", "--agency", A, "--name", "A市", "--kind", "municipality")
    run(capsys, d, "staff", "enroll", "--as", f"{A}/admin", "req", "--role", "requester")
    run(capsys, d, "flag", "request", "--as", f"{A}/req", "--subject", individual_number(), "--flag", "NON_DISCLOSURE")
    node = open_node(Path(d))
    try:
        head = node.app.max_position()
    finally:
        node.close()
    result, err = run(capsys, d, "projections", "rebuild")
    assert result["log_positions"] == head
    assert f"{head}/{head}" in err.splitlines()[-1].split("\r")[-1], "the progress counts the same positions"
    assert 0 < result["events_projected"] < head, "some events (keys, staff) no projection reads"
    assert "events" not in result
