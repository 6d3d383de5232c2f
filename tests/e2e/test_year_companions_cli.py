"""Companions, guardian bars and perpetrators' NON_DISCLOSURE requests from the console and over HTTP (issue 21):
each step's command, its exit code or HTTP status, and what the perpetrator can then see.

Threats: the perpetrator (a query about the child answered; a guardian's proxy view; the querier on their own
portal), an insider or administrator acting alone (four eyes: exit 4 / HTTP 403).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B, C
from tests.support.api import auth, client
from tests.support.staff import run_in_process

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]


def protect(node: Node, who: str, case: Any = None) -> None:
    rid = node.app.request_flags(Actor(B, "req"), who, FLAGS, case_id=case)
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)


def status_of_query(node: Node, querier: str, provider: str, who: str) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, who, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).status


def test_companions_bars_and_perpetrators_from_the_console(
    sqlite_node: Node, person: Callable[[], str], capsys: Any
) -> None:
    x, k, y = person(), person(), person()
    d = str(sqlite_node.config.data_dir)

    def run(*argv: str) -> tuple[int, Any, str]:
        code, out, err = run_in_process(["--data-dir", d, *argv], capsys)
        return code, json.loads(out) if code == 0 else None, err

    code, out, err = run("case", "open", "--as", f"{B}/req", "--victim", x, "--perpetrator", y)
    assert code == 0, err
    case = out["case_id"]
    protect(sqlite_node, x, UUID(case))
    code, out, err = run("case", "companion", "--as", f"{B}/req", "--case", case, "--companion", k)
    assert code == 0 and out["status"] == "pending", err
    rid = out["request_id"]
    assert run("flag", "approve", "--as", f"{B}/admin", rid)[0] == 4  # an administrator approves nothing
    assert run("flag", "approve", "--as", f"{B}/apr", rid)[0] == 0
    assert run("flag", "execute", "--as", f"{B}/op", rid)[0] == 0
    assert status_of_query(sqlite_node, A, B, k) == "in_progress"
    assert run("case", "companion", "--as", f"{B}/req", "--case", case, "--companion", k)[0] == 5  # already on it

    sqlite_node.app.register_proxy(Actor(A, "req"), k, y)
    code, out, _ = run("proxy", "bar", "--as", f"{B}/req", "--subject", k, "--guardian", y, "--relation", "parent")
    assert code == 0
    bar = out["bar_id"]
    assert views.portal_records(sqlite_node, y, k).access == "proxy"
    assert run("proxy", "bar-approve", "--as", f"{B}/admin", bar)[0] == 4
    assert run("proxy", "bar-approve", "--as", f"{B}/apr", bar)[0] == 0
    assert views.portal_records(sqlite_node, y, k).access == "none"
    code, out, _ = run("proxy", "bars", "--as", f"{B}/req")
    assert [b["in_force"] for b in out["bars"]] == [True]
    assert run("proxy", "bars", "--as", f"{B}/apr")[1]["bars"] == out["bars"]  # the approvers see them too
    assert run("proxy", "bars", "--as", f"{B}/counter")[0] == 4
    assert run("proxy", "lift-approve", "--as", f"{B}/apr", bar)[0] == 5  # nothing proposed

    code, out, _ = run("year", "queue", "--as", f"{B}/req")
    assert [p["subject"] for p in out["perpetrators"]] == [sqlite_node.app.subject(y)]
    code, out, _ = run("case", "perpetrator-requests", "--as", f"{B}/req", "--case", case)
    assert code == 0 and len(out["request_ids"]) == 1
    code, out, _ = run("year", "queue", "--as", f"{B}/req")
    assert out["perpetrators"] == []


def test_companions_bars_and_perpetrators_over_http(sqlite_node: Node, person: Callable[[], str]) -> None:
    x, k, y = person(), person(), person()
    app = sqlite_node.app
    case = app.open_case(Actor(B, "req"), x, perpetrators=[y])
    protect(sqlite_node, x, case)
    http = client(sqlite_node)

    def post(who: str, path: str, body: dict[str, Any], status: int) -> Any:
        r = http.post("/api/v1" + path, json=body, headers=auth(sqlite_node, *who.split("/")))
        assert r.status_code == status, r.text
        return r.json()

    assert status_of_query(sqlite_node, C, A, y) == "answered"
    q = http.get("/api/v1/year-queue", headers=auth(sqlite_node, B, "req")).json()
    assert [p["subject"] for p in q["perpetrators"]] == [app.subject(y)]
    (nd,) = [UUID(r) for r in post(f"{B}/req", f"/cases/{case}/perpetrator-requests", {}, 201)["request_ids"]]
    app.approve_request(Actor(B, "apr"), nd)
    app.execute_request(Actor(B, "op"), nd)
    status_of_query(sqlite_node, C, A, y)
    assert views.portal_records(sqlite_node, y, y).records == (), "C is no longer shown to Y"

    rid = UUID(post(f"{B}/req", f"/cases/{case}/companions", {"companion": k}, 201)["request_id"])
    post(f"{B}/req", f"/cases/{case}/companions", {"companion": k, "relation": "cousin"}, 422)
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert status_of_query(sqlite_node, A, B, k) == "in_progress"

    app.register_proxy(Actor(A, "req"), k, y)
    bar = post(f"{B}/req", "/guardian-bars", {"subject": k, "guardian": y, "relation": "legal_guardian"}, 201)
    post(f"{B}/admin", f"/guardian-bars/{bar['bar_id']}/approve", {}, 403)
    assert post(f"{B}/apr", f"/guardian-bars/{bar['bar_id']}/approve", {}, 200)["status"] == "in_force"
    assert views.portal_records(sqlite_node, y, k).access == "none"
    listed = http.get("/api/v1/guardian-bars", headers=auth(sqlite_node, B, "apr"))
    assert [b["bar_id"] for b in listed.json()["bars"]] == [bar["bar_id"]]
    assert http.get("/api/v1/guardian-bars", headers=auth(sqlite_node, B, "counter")).status_code == 403
    post(f"{B}/req", f"/guardian-bars/{bar['bar_id']}/lift", {"note": "家庭裁判所の決定"}, 200)
    post(f"{B}/apr", f"/guardian-bars/{bar['bar_id']}/lift/approve", {}, 200)
    assert views.portal_records(sqlite_node, y, k).access == "proxy"
