"""The year from the console and over HTTP (issue 21): a move becomes C's handover request; B's release before C
holds is refused with its code; an emergency flag is set by one person and co-approved by another; the term's
step runs from the command line; every refusal has its exit code or HTTP status.

Threats: the perpetrator asking the new municipality (the handover), an insider releasing alone (the refusals),
an administrator acting alone (no approver role, 403).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.conftest import B, C
from tests.support.api import auth, client
from tests.support.staff import run_in_process

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]


def protect(node: Node, who: str, agency: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), who, FLAGS)
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def test_the_year_from_the_console(sqlite_node: Node, person: Callable[[], str], capsys: Any) -> None:
    x = person()
    protect(sqlite_node, x, B)
    d = str(sqlite_node.config.data_dir)

    def run(*argv: str) -> tuple[int, Any, str]:
        code, out, err = run_in_process(["--data-dir", d, *argv], capsys)
        return code, json.loads(out) if code == 0 else None, err

    code, out, err = run("year", "move", "--as", f"{B}/req", "--subject", x, "--to", C, "--moved-on", "2026-12-01")
    assert code == 0 and out["recorded"] is True, err
    code, out, _ = run("year", "queue", "--as", f"{C}/req")
    assert [h["flags_to_take_over"] for h in out["handovers"]] == [FLAGS]
    code, _, err = run("year", "queue", "--as", f"{C}/counter")
    assert code == 4
    code, out, _ = run(
        "flag", "request", "--as", f"{B}/req", "--subject", x, "--flag", "NO_AUTO_RESPONSE", "--kind", "release",
        "--explanation", "説明済み",
    )  # fmt: skip
    rid = out["request_id"]
    for approver in ("apr", "apr2"):  # the last holder anywhere: one approval more than B's chain
        assert run("flag", "approve", "--as", f"{B}/{approver}", rid)[0] == 0
    code, _, err = run("flag", "execute", "--as", f"{B}/op", rid)
    assert code == 5 and "handover_pending" in err
    code, out, _ = run("year", "risk", "--as", f"{B}/req", "--subject", x, "--flag", "NO_AUTO_RESPONSE",
                       "--risk", "C has not set NO_AUTO_RESPONSE yet")  # fmt: skip
    assert run("year", "risk-approve", "--as", f"{B}/admin", out["decision_id"])[0] == 4
    assert run("year", "risk-approve", "--as", f"{B}/apr", out["decision_id"])[0] == 0
    code, out, _ = run("flag", "execute", "--as", f"{B}/op", rid)
    assert code == 0 and out["status"] == "executed"
    y = person()
    code, out, _ = run("year", "provisional", "--as", f"{C}/op", "--subject", y, "--flag", "NON_DISCLOSURE",
                       "--explanation", "夜間の緊急相談")  # fmt: skip
    assert code == 0 and out["status"] == "provisional"
    assert run("year", "co-approve", "--as", f"{C}/op", out["request_id"])[0] == 4
    assert run("year", "co-approve", "--as", f"{C}/apr", out["request_id"])[0] == 0
    code, out, _ = run("year", "apply", "--as", f"{B}/req", "--subject", x, "--applied-on", "2026-12-01")
    assert code == 0 and out["ends_on"] == "2027-12-01"
    code, out, _ = run("year", "extend", "--as", f"{B}/req", "--subject", x, "--requested-on", "2026-12-05")
    assert out["ends_on"] == "2028-12-01"
    code, out, _ = run("year", "step")
    assert code == 0 and out["recorded"] == []
    assert run("year", "lapse-approve", "--as", f"{B}/apr", "--subject", x)[0] == 5  # nothing proposed
    assert run("year", "move", "--as", f"{B}/req", "--subject", x, "--to", "C市", "--moved-on", "2026-12-01")[0] == 2


def test_the_year_over_http(sqlite_node: Node, person: Callable[[], str]) -> None:
    x = person()
    protect(sqlite_node, x, B)
    http = client(sqlite_node)

    def post(who: str, path: str, body: dict[str, Any], status: int) -> Any:
        r = http.post("/api/v1" + path, json=body, headers=auth(sqlite_node, *who.split("/")))
        assert r.status_code == status, r.text
        return r.json()

    moved = post(f"{C}/req", "/moves", {"subject": x, "to_agency": C, "moved_on": "2026-12-01"}, 201)
    assert moved["recorded"] is True
    q = http.get("/api/v1/year-queue", headers=auth(sqlite_node, C, "req"))
    assert q.status_code == 200 and q.json()["handovers"][0]["flags_to_take_over"] == FLAGS
    assert http.get("/api/v1/year-queue", headers=auth(sqlite_node, C, "counter")).status_code == 403
    post(f"{C}/req", "/moves", {"subject": x, "to_agency": C, "moved_on": "2099-13-01"}, 422)
    risk = post(f"{B}/req", "/release-risks", {"subject": x, "flags": ["NON_DISCLOSURE"], "risk": "C not yet"}, 201)
    post(f"{B}/admin", f"/release-risks/{risk['decision_id']}/approve", {}, 403)
    post(f"{B}/apr", f"/release-risks/{risk['decision_id']}/approve", {}, 200)
    y = person()
    flag = post(f"{C}/op", "/provisional-flags", {"subject": y, "flags": FLAGS, "explanation": "緊急"}, 201)
    assert sqlite_node.app.holders_anywhere(sqlite_node.app.subject(y)) == {f: [C] for f in FLAGS}
    post(f"{C}/req", "/provisional-flags", {"subject": person(), "flags": FLAGS, "explanation": "緊急"}, 403)
    post(f"{C}/apr", f"/provisional-flags/{flag['request_id']}/co-approve", {"note": "確認"}, 200)
    term = post(f"{B}/req", "/terms", {"subject": x, "applied_on": "2026-12-01"}, 201)
    assert term["ends_on"] == "2027-12-01"
    post(f"{B}/req", "/terms/lapse", {"subject": x, "note": "延長申出なし"}, 200)
    post(f"{B}/admin", "/terms/lapse/approve", {"subject": x}, 403)
    assert post(f"{B}/apr", "/terms/lapse/approve", {"subject": x}, 200)["status"] == "lapsed"
    assert sqlite_node.app.holders_anywhere(sqlite_node.app.subject(x)) == {f: [B] for f in FLAGS}


@pytest.fixture(autouse=True)
def _a_fixed_today(sqlite_node: Node) -> None:
    """The HTTP story's application dates lie before this day (the console's commands read the real clock)."""
    sqlite_node.app.clock = lambda: datetime(2026, 12, 7, 10, tzinfo=UTC)
