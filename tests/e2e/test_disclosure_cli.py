"""Disclosure requests (開示請求) and counter printouts from the console and over HTTP (issue 21, docs/channels.md):
the seed's case 1 — C queried A about the perpetrator Q while Q is flagged ``NON_DISCLOSURE`` — gives Q a document
and a printout that do not name C, in every format; both hand-outs are recorded; an unflagged person's shows all.

Threats: the perpetrator (his own disclosure request, a printout at any counter), an insider (a role without the
counter's ``counter_lookup`` hands out nothing: exit 4 / 403; every hand-out is recorded).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ledger.app import Actor
from ledger.app.disclosures import disclosure_records
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.support.api import auth, client
from tests.support.staff import run_in_process

ND = "NON_DISCLOSURE"


def protect(node: Node, who: str, agency: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), who, [ND])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def query(node: Node, querier: str, provider: str, subject: str) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id


def test_disclosure_and_printout_from_the_console(sqlite_node: Node, person: Callable[[], str], capsys: Any) -> None:
    q, p = person(), person()
    protect(sqlite_node, q, C)
    hidden = query(sqlite_node, C, A, q)
    shown = query(sqlite_node, C, A, p)
    d = str(sqlite_node.config.data_dir)

    def run(*argv: str) -> tuple[int, str, str]:
        return run_in_process(["--data-dir", d, *argv], capsys)

    for fmt in ("json", "csv", "text"):
        code, out, err = run("disclosure", "request", "--as", f"{A}/counter", "--subject", q, "--format", fmt)
        assert code == 0, err
        assert C not in out and hidden not in out, fmt
        code, out, err = run("disclosure", "printout", "--as", f"{B}/counter", "--subject", q, "--format", fmt)
        assert code == 0, err
        assert C not in out and hidden not in out, fmt
    code, out, _ = run("disclosure", "request", "--as", f"{A}/counter", "--subject", p, "--reference", "R-7")
    doc = json.loads(out)
    assert [(r["request_id"], r["querier"]) for r in doc["records"]] == [(shown, C)], "unflagged: everything"
    assert doc["reference"] == "R-7" and doc["notice"]
    code, out, _ = run("disclosure", "printout", "--as", f"{A}/counter", "--subject", p)
    assert code == 0 and shown in out and C in out
    assert run("disclosure", "printout", "--as", f"{A}/req", "--subject", p)[0] == 4
    assert run("disclosure", "request", "--as", f"{A}/counter", "--subject", p, "--asked-by", q)[0] == 4
    with pytest.raises(SystemExit) as bad:  # refused before anything runs (or is recorded)
        run("disclosure", "request", "--as", f"{A}/counter", "--subject", p, "--format", "pdf")
    assert bad.value.code == 2
    at_a = disclosure_records(sqlite_node.app, Actor(A, "aud"))
    assert [(r.channel, r.withheld) for r in at_a] == [("disclosure", 1)] * 3 + [("disclosure", 0), ("printout", 0)]
    assert [(r.channel, r.withheld) for r in disclosure_records(sqlite_node.app, Actor(B, "aud"))] == [
        ("printout", 1)
    ] * 3


def test_disclosure_and_printout_over_http(sqlite_node: Node, person: Callable[[], str]) -> None:
    q, p = person(), person()
    protect(sqlite_node, q, C)
    hidden = query(sqlite_node, C, A, q)
    shown = query(sqlite_node, C, A, p)
    http = client(sqlite_node)

    def post(who: str, path: str, body: dict[str, Any], status: int) -> Any:
        r = http.post("/api/v1" + path, json=body, headers=auth(sqlite_node, *who.split("/")))
        assert r.status_code == status, r.text
        return r

    for path in ("/disclosures", "/printouts"):
        for fmt in ("json", "csv", "text"):
            r = post(f"{A}/counter", path, {"subject": q, "format": fmt}, 200)
            assert C not in r.text and hidden not in r.text, (path, fmt)
        doc = post(f"{A}/counter", path, {"subject": p}, 200).json()
        assert [(x["request_id"], x["querier"], x["provider"]) for x in doc["records"]] == [(shown, C, A)]
        post(f"{A}/aud", path, {"subject": p}, 403)
        post(f"{A}/counter", path, {"subject": p, "reference": "x" * 65}, 422)
    r = post(f"{A}/counter", "/printouts", {"subject": p, "format": "csv"}, 200)
    assert r.headers["content-type"].startswith("text/csv") and shown in r.text
    at_a = disclosure_records(sqlite_node.app, Actor(A, "aud"))
    assert sum(r.withheld for r in at_a) == 6 and len(at_a) == 9
