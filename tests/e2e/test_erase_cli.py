"""``flagledger erase`` at the console (issue 22): two administrators, then ``audit verify`` and ``audit replay`` say
what was erased, when and by which approval.

Threats: an administrator acting alone (the requester's own approval is refused, exit 5, nothing destroyed); an
insider reading the node's files after the erasure (the intake note is gone from every file of the node).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.cli.main import main
from ledger.runtime.bootstrap import Node
from projections.timeline import DETAIL, timeline_events
from tests.conftest import A
from tests.support.staff import activate_second_administrator, password_env

NOTE = "E2E-intake-note-moved-in-with-her-sister-5521"
PURPOSE = "E2E-read-purpose-her-new-address-8830"


def run(capsys: pytest.CaptureFixture[str], node: Node, *argv: str) -> tuple[int, list[dict], str]:
    full = ["--data-dir", str(node.config.data_dir), *argv]
    with password_env(full):  # each person signs with their own password, as a script gives it
        code = main(full)
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip().startswith("{")]
    return code, lines, captured.err


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [p.name for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_erase_takes_two_administrators_and_the_audit_names_it(
    sqlite_node: Node, capsys: pytest.CaptureFixture[str], person: Callable[[], str], tmp_path: Path
) -> None:
    """Administrator alone: refused. Insider with the files afterwards: the note is nowhere; the audit passes."""
    node = sqlite_node
    activate_second_administrator(node, A)
    number, other = person(), person()
    node.app.open_case(Actor(A, "req"), number, notes=NOTE)
    node.app.open_case(Actor(A, "req"), other, notes="E2E-other-note")
    node.app._record_reads(Actor(A, "rev"), [node.app.subject(number)], "protected details", PURPOSE)
    node.projector.catch_up()

    code, lines, err = run(
        capsys, node, "erase", "request", "--subject", number, "--reason", "retention ended", "--as", f"{A}/admin"
    )
    assert code == 0, err
    rid = lines[0]["request_id"]
    code, _, err = run(capsys, node, "erase", "approve", rid, "--as", f"{A}/admin")
    assert code == 5 and "four eyes" in err
    code, _, err = run(capsys, node, "erase", "approve", rid, "--as", f"{A}/req")
    assert code == 4
    # nothing destroyed yet: the views hold the note sealed under the person's key (never in plain text)
    with node.engine.connect() as conn:
        subject = node.app.subject(number)
        cell = str(conn.execute(select(timeline_events.c.detail).where(timeline_events.c.subject == subject)).scalar())
    assert NOTE in str(node.projector.cipher.open(DETAIL, cell))
    assert _files_holding(node.config.data_dir, cell.encode()) and not _files_holding(
        node.config.data_dir, NOTE.encode()
    )
    code, lines, err = run(capsys, node, "erase", "approve", rid, "--as", f"{A}/admin2", "--note", "checked")
    assert code == 0, err
    assert lines[0]["status"] == "erased" and lines[0]["destroyed"] == 1
    node.close()  # the fixture's own connections let go, as a stopped node's would

    assert _files_holding(node.config.data_dir, NOTE.encode()) == []
    assert _files_holding(node.config.data_dir, cell.encode()) == []  # the views rebuilt without it
    code, lines, err = run(capsys, node, "audit", "verify", "--quiet")
    assert code == 0, err
    erased = lines[0]["erased_events"]
    assert {e["topic"].rpartition(":")[2] for e in erased} == {
        "ProtectionCase.Opened",
        "AccessRecord.ProtectedDetailsRead",
        "ErasureRequest.Requested",
    }
    assert all(e["request"] == rid and e["approved_by"] == "admin2" for e in erased)
    code, lines, err = run(capsys, node, "audit", "replay", "--as", f"{A}/aud", "--until-position", "100000", "--quiet")
    assert code == 0, err
    summary = lines[0]["replay"]
    assert summary["events_erased"] == 3 and summary["erasures"][0]["request"] == rid
    # the auditor's report lists that a read happened, not whom it was about or why
    out = tmp_path / "report"
    code, lines, err = run(
        capsys, node, "audit", "report", "--as", f"{A}/aud", "--from", "2020-01-01T00:00:00Z", "--to",
        (datetime.now(UTC) + timedelta(minutes=1)).isoformat(), "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    reads = (out / "reads.csv").read_text(encoding="utf-8")
    assert "(erased)" in reads and PURPOSE not in reads
