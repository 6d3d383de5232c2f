"""Every query meets the law catalogue (docs/bodies.md): in process, over HTTP, on the command line, from a peer
node, and at the hub. A query beyond its legal basis is refused and nothing is recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.cli.main import main as cli
from ledger.errors import Code, RuleViolation
from ledger.hub.inbox import parked
from ledger.hub.log import open_hub_store
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B
from tests.support.api import auth, client
from tests.support.hub_world import A as HA
from tests.support.hub_world import C, Cast, World
from tests.support.people import individual_number

BEYOND = [
    (150, "児童手当", "地方税関係情報", Code.UNKNOWN_LEGAL_BASIS),
    (74, "公営住宅", "地方税関係情報", Code.PROCEDURE_NOT_IN_BASIS),
    (74, "児童手当", "医療保険給付関係情報", Code.INFO_KIND_NOT_PERMITTED),
]


@pytest.mark.parametrize(("item", "procedure", "info_kind", "code"), BEYOND)
def test_a_query_beyond_its_basis_records_nothing(
    node: Node, person: Callable[[], str], item: int, procedure: str, info_kind: str, code: str
) -> None:
    """Peer agency: its counter (or its linkage gateway, receive_query) asks beyond its lawful purpose: refused
    with the reason, no provision record, no probe notice, nothing held."""
    app, x = node.app, person()
    before = app.max_position()
    with pytest.raises(RuleViolation) as refused:
        app.request_provision(Actor(A, "counter"), B, x, legal_item=item, procedure=procedure, info_kind=info_kind)
    assert refused.value.code == code
    with pytest.raises(RuleViolation) as refused:
        app.receive_query(A, B, x, legal_item=item, procedure=procedure, info_kind=info_kind)
    assert refused.value.code == code
    assert app.max_position() == before
    lawful = app.request_provision(
        Actor(A, "counter"), B, x, legal_item=26, procedure="生活保護", info_kind="地方税関係情報"
    )
    assert lawful.status == "answered"


def test_http_and_cli_refuse_with_the_code_and_show_the_catalogue(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Peer agency over the API and a shell user on the CLI: 409 / exit 5 with the code; the catalogue is
    readable by staff (GET /law-catalogue, `body law`) so a refusal can be understood."""
    http, headers = client(sqlite_node), auth(sqlite_node, A, "counter")
    ask = {"provider": B, "subject": person(), "legal_item": 74, "procedure": "児童手当", "info_kind": "住民票"}
    refused = http.post("/api/v1/provision-requests", json=ask, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == Code.INFO_KIND_NOT_PERMITTED
    shown = http.get("/api/v1/law-catalogue", headers=headers)
    assert shown.status_code == 200 and 74 in [r["item"] for r in shown.json()["rows"]]
    d = str(sqlite_node.config.data_dir)
    argv = ["--data-dir", d, "provision", "request", "--as", f"{A}/counter", "--provider", B, "--subject",
            person(), "--item", "31", "--procedure", "児童手当", "--info-kind", "地方税関係情報"]  # fmt: skip
    capsys.readouterr()
    assert cli(argv) == 5
    assert Code.PROCEDURE_NOT_IN_BASIS in capsys.readouterr().err
    assert cli(["--data-dir", d, "body", "law"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["item"]: r["procedure"] for r in rows}[74] == "児童手当"


def test_the_hub_parks_a_query_beyond_its_basis(tmp_path: Path) -> None:
    """Peer agency talking to the network directly (its own node bypassed): the hub, as the network does,
    checks the legal basis; the query is parked with the code and nothing reaches the provider."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    try:
        broker = MemoryBroker()
        w = World.open(Cast.of(HA, C), store, lambda p: MemoryTransport(broker, p))
        x = individual_number()
        w.agencies[HA].file_person(x)
        w.agencies[C].query(x, HA, "児童手当", 74, "医療保険給付関係情報")
        w.settle()
        assert [p.code for p in parked(store.engine)] == [Code.INFO_KIND_NOT_PERMITTED]
        assert w.inbox(HA) == []
        w.agencies[C].query(x, HA, "児童手当", 74, "地方税関係情報")
        w.settle()
        assert len(w.inbox(HA)) == 1
    finally:
        store.close()
