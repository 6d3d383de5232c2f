"""On the command line, another agency's objects are as if they did not exist, and reads are recorded as over HTTP.

Threats: a peer agency's staff (and a perpetrator talking to them) probing request ids — the CLI's refusal used to
name the owning agency where the API answered 404, and ``provision status`` showed any request on the node to
anyone, without ``--as``; an insider resolving liaison references — ``view liaison`` read a protected person's
holding without recording it, where the API records every such read first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import uuid4

import pytest

from ledger.app import Actor
from ledger.cli.main import main
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import SC, A, B, C
from tests.support.api import access_reads

NAR = "NO_AUTO_RESPONSE"


def cli(node: Node, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["--data-dir", str(node.config.data_dir), *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def protect(node: Node, subject: str) -> None:
    rid = node.app.request_flags(Actor(B, "req"), subject, [NAR])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)


def test_another_agencys_request_is_refused_exactly_like_an_unknown_one(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    node = sqlite_node
    theirs = str(node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"]))
    missing = str(uuid4())
    before = node.app.max_position()
    for argv in (
        ["flag", "approve", "--as", f"{A}/apr"],
        ["flag", "reject", "--as", f"{A}/apr", "--reason", "r"],
        ["flag", "execute", "--as", f"{A}/op"],
    ):
        code, out, err = cli(node, capsys, *argv, theirs)
        code_unknown, _, err_unknown = cli(node, capsys, *argv, missing)
        assert (code, code_unknown) == (3, 3) and out == ""
        assert err == err_unknown.replace(missing, theirs)
        assert err == "flagledger: error [not_found]: unknown flag request\n"
        assert B not in err
    assert node.app.max_position() == before


def test_provision_status_needs_an_actor_and_shows_only_the_querier_and_the_provider(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    node, x = sqlite_node, person()
    protect(node, x)
    rid = node.app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id
    code, _, err = cli(node, capsys, "provision", "status", rid)
    assert code == 4 and "[not_signed_in]" in err and "--as" in err  # nobody signed in, nobody named
    for asker in (f"{A}/counter", f"{B}/rev"):  # the querier, and the provider holding it
        code, out, _ = cli(node, capsys, "provision", "status", "--as", asker, rid)
        assert code == 0 and json.loads(out)["status"] == "in_progress", asker
    missing = str(uuid4())
    for stranger in (f"{C}/counter", f"{SC}/req"):
        code, out, err = cli(node, capsys, "provision", "status", "--as", stranger, rid)
        code_unknown, _, err_unknown = cli(node, capsys, "provision", "status", "--as", stranger, missing)
        assert (code, code_unknown, out) == (3, 3, "")
        assert err == err_unknown.replace(missing, rid) and A not in err and B not in err
    code, _, err = cli(node, capsys, "provision", "status", "--as", f"{A}/nobody", rid)
    assert code == 4, "only enrolled, active staff"


def test_view_liaison_records_the_read_before_it_shows_it(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    node, x = sqlite_node, person()
    protect(node, x)
    (ref,) = views.nationwide_view(node, Actor(C, "counter"), x).liaison
    code, _, err = cli(node, capsys, "view", "liaison", "--as", f"{B}/rev", ref)
    assert code == 2 and "--purpose" in err, "a read of protected details says why"
    assert access_reads(node) == []
    code, out, _ = cli(node, capsys, "view", "liaison", "--as", f"{B}/rev", ref, "--purpose", "C asks B to call her")
    assert code == 0 and json.loads(out)["subject"] == node.app.subject(x)
    assert access_reads(node) == [(B, "rev", "liaison reference")]
    reads = [
        e
        for e in views.subject_timeline(node, Actor(B, "aud"), x, "check")
        if e.event == "AccessRecord.ProtectedDetailsRead"
    ]
    assert reads[0].detail["purpose"] == "C asks B to call her"
    code, _, _ = cli(node, capsys, "view", "liaison", "--as", f"{C}/rev", ref, "--purpose", "curious")
    assert code == 3, "only the holding agency resolves it"
    code, _, _ = cli(node, capsys, "view", "liaison", "--as", f"{B}/counter", ref, "--purpose", "curious")
    assert code == 4
    assert [r for r in access_reads(node) if r[2] == "liaison reference"] == [(B, "rev", "liaison reference")]
