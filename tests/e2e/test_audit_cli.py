"""Auditors at the console: ``audit replay``, ``audit timeline`` and ``audit report``.

Answers come as JSON lines; bad timestamps, unknown people and non-auditors get a clear error and a telling exit
code; the report is a self-contained HTML file plus CSV files that escape whatever staff typed.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from ledger.api.auth import sign_in
from ledger.app import Actor
from ledger.cli.main import main
from ledger.merkle import root_hash
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.support.approvals import approve_fully
from tests.support.links import link
from tests.support.staff import enrol, password_of

HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_PURPOSE = "<img src=x onerror=alert(1)> 調査"
FORMULA_NOTE = '=HYPERLINK("http://evil.example","click")'


def run(capsys: pytest.CaptureFixture[str], node: Node, *argv: str) -> tuple[int, list[dict], str]:
    code = main(["--data-dir", str(node.config.data_dir), *argv])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, lines, captured.err


def protect(
    node: Node, agency: str, x: str, flags: list[str], *, kind: str = "set", approver: str = "apr", note: str = ""
) -> UUID:
    extra = {"kind": "release", "explanation": "本人に説明済み"} if kind == "release" else {}
    rid = node.app.request_flags(Actor(agency, "req"), x, flags, **extra)
    approve_fully(node.app, agency, rid, approver, note)
    node.app.execute_request(Actor(agency, "op"), rid)
    return rid


def test_replay_answers_flags_and_holds_as_of_an_instant(sqlite_node: Node, capsys, person) -> None:
    node, x = sqlite_node, person()
    protect(node, B, x, ["NO_AUTO_RESPONSE"])
    t1 = datetime.now(UTC)
    protect(node, B, x, ["NO_AUTO_RESPONSE"], kind="release")
    t2 = datetime.now(UTC).astimezone()  # any offset is accepted when it is stated

    code, lines, err = run(
        capsys,
        node,
        "audit",
        "replay",
        "--as",
        f"{A}/aud",
        "--as-of",
        t1.isoformat(),
        "--subject",
        x,
        "--would-hold",
        "--requester",
        C,
        "--purpose",
        "苦情調査",
    )
    assert code == 0, err
    assert "replay:" in err  # progress on stderr
    replayed, answer = lines
    assert replayed["target"].startswith("sqlite:///" + str(node.config.data_dir / "audit"))
    # A's auditor learns that a request would have been held, never who would have been told (issue 18)
    assert answer["would_hold"]["held"] is True and answer["would_hold"]["holders_notified"] == []

    code, lines, _ = run(
        capsys,
        node,
        "audit",
        "replay",
        "--as",
        f"{A}/aud",
        "--as-of",
        t2.isoformat(),
        "--subject",
        x,
        "--purpose",
        "苦情調査",
        "--quiet",
    )
    assert code == 0
    flags = lines[1]["flags"]
    assert flags["protected"] is False and flags["per_agency"] == [], "B's holdings are B's"
    code, lines, _ = run(
        capsys,
        node,
        "audit",
        "replay",
        "--as",
        f"{A}/aud",
        "--as-of",
        t1.isoformat(),
        "--subject",
        x,
        "--purpose",
        "苦情調査",
        "--quiet",
    )
    assert lines[1]["flags"]["nationwide"] == {"NO_AUTO_RESPONSE": []}
    assert len(list((node.config.data_dir / "audit").glob("replay-*.sqlite"))) == 3


def test_bad_arguments_get_clear_errors_and_non_zero_exits(sqlite_node: Node, capsys, person) -> None:
    node, x = sqlite_node, person()
    protect(node, B, x, ["NON_DISCLOSURE"])
    now = datetime.now(UTC).isoformat()
    cases = [
        (2, "not an ISO 8601 time", ["--as-of", "yesterday"]),
        (2, "no UTC offset", ["--as-of", "2026-11-25T10:00:00"]),
        (2, "exactly one of", []),
        (2, "exactly one of", ["--as-of", now, "--until-position", "3"]),
        (2, "--requester", ["--as-of", now, "--would-hold", "--subject", x, "--purpose", "p"]),
        (2, "--purpose", ["--as-of", now, "--subject", x]),
        (2, "individual number", ["--as-of", now, "--subject", "12345", "--purpose", "p"]),
        (3, "nothing in the log", ["--as-of", now, "--subject", person(), "--purpose", "p"]),
        (2, "unsupported target", ["--as-of", now, "--target", "mysql://x/y"]),
        (2, "--page", ["--as-of", now, "--page", "0"]),
        (2, "--target", ["--as-of", now, "--reuse"]),
    ]
    for want, message, extra in cases:
        code, _, err = run(capsys, node, "audit", "replay", "--as", f"{A}/aud", "--quiet", *extra)
        assert code == want and message in err, (extra, code, err)
    code, _, err = run(capsys, node, "audit", "replay", "--as", f"{A}/req", "--as-of", now, "--quiet")
    assert code == 4 and "may not audit" in err
    code, _, err = run(capsys, node, "audit", "timeline", "--as", f"{A}/counter", x, "--purpose", "p")
    assert code == 4
    code, _, err = run(capsys, node, "audit", "timeline", "--as", f"{A}/aud", person(), "--purpose", "p")
    assert code == 3 and "nothing in the log" in err
    out = node.config.data_dir.parent / "r"
    code, _, err = run(
        capsys,
        node,
        "audit",
        "report",
        "--as",
        f"{A}/aud",
        "--from",
        now,
        "--to",
        "2020-01-01T00:00:00Z",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 2 and "after --to" in err and not (out / "report.html").exists()
    code, _, err = run(
        capsys,
        node,
        "audit",
        "report",
        "--as",
        f"{A}/op",
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        now,
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 4 and not out.exists()


def test_the_timeline_follows_the_person_across_a_number_change(sqlite_node: Node, capsys, person) -> None:
    node, old, new = sqlite_node, person(), person()
    protect(node, B, old, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"], note="DV避難")
    link(node.app, B, old, new)
    node.app.request_provision(
        Actor(C, "counter"), A, new, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    p_new = node.app.subject(new)

    # each auditor sees the events its own agency signed (issue 18): B its flags and the number change, A the
    # query it answered and held
    signed_by = {
        B: ("FlagRequest.Requested", "FlagRequest.Approved", "FlagRequest.Executed", "Protection.FlagsSet"),
        A: ("ProvisionRequest.Received", "ProvisionRequest.Held", "ProbeNotice.Sent"),
    }
    for agency, expected_events in signed_by.items():
        for who in (old, new):
            code, entries, err = run(
                capsys, node, "audit", "timeline", "--as", f"{agency}/aud", who, "--purpose", "監査"
            )
            assert code == 0, err
            events = [e["event"] for e in entries]
            for expected in (*expected_events, "AccessRecord.ProtectedDetailsRead"):
                assert expected in events, (expected, events)
            assert {e["agency"] for e in entries} == {agency}, "never another agency's events"
            positions = [e["position"] for e in entries]
            assert positions == sorted(positions) and len(positions) == len(set(positions))
            if agency == B:
                assert "PseudonymLink.Linked" in events
                approval = next(e for e in entries if e["event"] == "FlagRequest.Approved")
                assert approval["actor"] == "apr" and approval["detail"]["note"] == "DV避難"
            else:
                held = next(e for e in entries if e["event"] == "ProvisionRequest.Received")
                assert held["subject"] == p_new, "found through either number"
                assert held["detail"]["querier"] == C and held["at"].endswith("Z")
                probe = next(e for e in entries if e["event"] == "ProbeNotice.Sent")
                assert probe["detail"]["holders"] == [], "B, the holder, is not named to A"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_report_is_self_contained_escapes_everything_and_names_the_root(
    sqlite_node: Node, capsys, person, tmp_path
) -> None:
    node, x, y = sqlite_node, person(), person()
    enrol(node, Actor(A, "admin"), "evil", ["approver"], name=HOSTILE_NAME)
    start = datetime.now(UTC)
    rid = protect(node, A, x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"], approver="evil", note=FORMULA_NOTE)
    # (a procedure is one of the law catalogue's names since issue 21: no markup reaches a query any more)
    held = node.app.request_provision(
        Actor(C, "counter"), A, x, legal_item=26, procedure="生活保護", info_kind="地方税関係情報"
    )
    node.app.propose_decision(Actor(A, "rev"), UUID(held.request_id), "refuse", "known_perpetrator")
    node.app.approve_decision(
        Actor(A, "apr"), UUID(held.request_id), node.app.provision_request(UUID(held.request_id)).proposal_version
    )
    pending = node.app.request_provision(
        Actor(C, "counter"), A, x, legal_item=26, procedure="生活保護", info_kind="地方税関係情報"
    )
    node.app.record_access(Actor(A, "aud"), x, "nationwide holders", HOSTILE_PURPOSE)
    _, grant = sign_in(node, A, "evil", password_of(A, "evil"), ttl=timedelta(hours=1), roles=("approver",))
    protect(node, A, x, ["NON_DISCLOSURE"], kind="release")
    protect(node, B, x, ["NON_DISCLOSURE"])  # B's own: not in A's report (issue 18)
    protect(node, C, y, ["NON_DISCLOSURE"])
    changed = person()
    link(node.app, A, changed, person())  # a number change: four eyes, listed with the approvals (issue 18)
    end = datetime.now(UTC) + timedelta(minutes=1)

    out = tmp_path / "report"
    code, lines, err = run(
        capsys,
        node,
        "audit",
        "report",
        "--as",
        f"{A}/aud",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--out",
        str(out),
    )
    assert code == 0, err
    result = lines[0]
    assert result["verified"] is True
    for name in (
        "report.html",
        "summary.csv",
        "flags.csv",
        "flag_summary.csv",
        "approvals.csv",
        "held.csv",
        "reads.csv",
        "tokens.csv",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.part"))

    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in page and "&lt;img src=x" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external assets
    assert "<style>" in page and "flagledger audit report" in page and f"{A}/aud" in page

    flags = _read(out / "flags.csv")
    assert [(r["agency"], r["action"], r["flags"]) for r in flags] == [
        (A, "set", "NON_DISCLOSURE,NO_AUTO_RESPONSE"),
        (A, "release", "NON_DISCLOSURE"),
    ], "only A's own flags: B's and C's would tell A's auditor who protects x and y"
    assert all(r["applied_by"] == "op" for r in flags)
    summary = {(r["agency"], r["flag"]): (r["set"], r["released"]) for r in _read(out / "flag_summary.csv")}
    assert summary == {(A, "NON_DISCLOSURE"): ("1", "1"), (A, "NO_AUTO_RESPONSE"): ("1", "0")}
    approvals = _read(out / "approvals.csv")
    first = next(r for r in approvals if r["request_id"] == str(rid) and r["step"] == "approved")
    assert first["staff"] == "evil" and first["staff_name"] == HOSTILE_NAME  # kept verbatim in CSV …
    assert first["note"] == "'" + FORMULA_NOTE  # … but never as a live spreadsheet formula
    assert first["requested_by"] == "req" and first["flags"] == "NON_DISCLOSURE,NO_AUTO_RESPONSE"
    assert {r["step"] for r in approvals} == {"approved", "executed"}
    (number_change,) = [r for r in approvals if r["request_kind"] == "link"]
    assert (number_change["agency"], number_change["staff"], number_change["requested_by"]) == (A, "apr", "req")
    assert number_change["subject"].startswith(node.app.subject(changed) + " → ")
    held_rows = {r["request_id"]: r for r in _read(out / "held.csv")}
    assert held_rows[held.request_id]["outcome_at_period_end"] == "refused"
    assert held_rows[held.request_id]["decided_by"] == "apr" and held_rows[held.request_id]["querier"] == C
    assert held_rows[pending.request_id]["outcome_at_period_end"] == "held (pending)"
    reads = _read(out / "reads.csv")
    assert [(r["staff"], r["what"]) for r in reads] == [("aud", "nationwide holders"), ("aud", "audit report")]
    assert reads[0]["purpose"] == HOSTILE_PURPOSE and reads[1]["purpose"].startswith("period ")
    (token,) = _read(out / "tokens.csv")
    assert (token["agency"], token["issued_by"], token["staff"], token["staff_name"], token["roles"]) == (
        A,
        "evil",  # their own sign-in
        "evil",
        HOSTILE_NAME,
        "approver",
    )
    assert token["token_id"] == grant.token_id and token["expires_at"] == grant.expires_at.isoformat()
    assert token["via"] == "password"  # an auditor sees how the person proved who they are, not only that they did

    meta = {r["key"]: r["value"] for r in _read(out / "summary.csv")}
    leaves = [env.leaf_hash for _, _, env in node.app.envelopes()]
    assert meta["verification"] == "ok" and int(meta["merkle_tree_size_at_period_end"]) == len(leaves)
    assert meta["merkle_root_at_period_end"] == root_hash(leaves).hex() == result["merkle_root"]
    assert meta["generated_by"] == f"{A}/aud (aud)" and meta["period_to"].endswith("Z")

    code, _, err = run(
        capsys,
        node,
        "audit",
        "report",
        "--as",
        f"{A}/aud",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 5 and "already holds a report" in err


def test_the_reports_root_is_the_log_as_it_stood_at_the_periods_end(
    sqlite_node: Node, capsys, person, tmp_path
) -> None:
    node, x = sqlite_node, person()
    protect(node, B, x, ["NON_DISCLOSURE"])
    (checkpoint,) = node.app.sign_checkpoint(B)
    size, end = node.app.max_position(), datetime.now(UTC)
    protect(node, B, x, ["NON_DISCLOSURE"], kind="release")  # after the period: not in the root
    node.app.sign_checkpoint(B)  # nor this checkpoint
    code, lines, err = run(
        capsys,
        node,
        "audit",
        "report",
        "--as",
        f"{B}/aud",
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        end.isoformat(),
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    )
    assert code == 0, err
    leaves = [env.leaf_hash for _, _, env in node.app.envelopes()]
    assert lines[0]["merkle_tree_size"] == size < len(leaves)
    assert lines[0]["merkle_root"] == root_hash(leaves[:size]).hex()
    assert lines[0]["rows"]["flags"] == 1
    # the checkpoint signed in the period is named, and its root is the report's root over the same leaves
    meta = {r["key"]: r["value"] for r in _read(tmp_path / "r" / "summary.csv")}
    assert meta["checkpoint_root"] == checkpoint.root.hex() == root_hash(leaves[: checkpoint.tree_size]).hex()
    assert meta["checkpoint_tree_size"] == str(checkpoint.tree_size) and meta["verification"] == "ok"
    assert meta["checkpoint_at_period_end"].startswith(f"{B} tree_size {checkpoint.tree_size}")
