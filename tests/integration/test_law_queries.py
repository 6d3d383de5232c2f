"""Every query meets the law catalogue (docs/bodies.md): in process, over HTTP, on the command line, from a peer
node, and at the hub. A query beyond its legal basis — another item, procedure or information kind, an item
asked by another kind of agency than the asking one, or one asked of (answered by) another kind of agency than
the row's provider — is refused and nothing is recorded.

Threat throughout: a peer agency asking beyond its lawful purpose (its counter, its gateway, or its own keys
talking to the network directly), or asked for and answering what the law does not give it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.app import Actor
from ledger.cli.main import main as cli
from ledger.errors import Code, RuleViolation
from ledger.hub.inbox import parked
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_requests
from ledger.linkage.messages import QueryMessage
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.runtime.bootstrap import AgencySpec, Node, open_node
from ledger.runtime.linkage import code_of
from tests.conftest import SC, A, B, NodeFactory
from tests.support.api import auth, client
from tests.support.hub_nodes import hub_nodes
from tests.support.hub_world import A as HA
from tests.support.hub_world import C, Cast, World
from tests.support.people import individual_number

D = "JPS-D"  # a pension office (年金事務所) of a national agency, as in the hub demo
PENSION = {"legal_item": 48, "procedure": "国民年金", "info_kind": "地方税関係情報"}  # 別表第二 48, 厚生労働大臣
# a querier of another kind than the row's: a support centre is no 情報照会者 of any row; a municipality may not
# borrow the pension office's item
WRONG_KIND = [
    (SC, 74, "児童手当", "地方税関係情報"),
    (A, 48, "国民年金", "地方税関係情報"),
]

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


@pytest.mark.parametrize(("querier", "item", "procedure", "info_kind"), WRONG_KIND)
def test_a_querier_of_another_kind_is_refused_and_records_nothing(
    node: Node, person: Callable[[], str], querier: str, item: int, procedure: str, info_kind: str
) -> None:
    """Peer agency asking under an item that is another kind of agency's (a support centre asking B for a
    person's tax data under the child-allowance item; municipality A under the pension item): refused
    ``querier_not_in_basis`` naming who may ask, from its counter and as a peer node's query alike; no provision
    record, no probe notice. The same item, procedure and kind from a municipality of the row is answered."""
    app, x = node.app, person()
    before = app.max_position()
    with pytest.raises(RuleViolation) as refused:
        app.request_provision(
            Actor(querier, "counter"), B, x, legal_item=item, procedure=procedure, info_kind=info_kind
        )
    assert refused.value.code == Code.QUERIER_NOT_IN_BASIS and "agency kinds" in str(refused.value)
    with pytest.raises(RuleViolation) as refused:
        app.receive_query(querier, B, x, legal_item=item, procedure=procedure, info_kind=info_kind)
    assert refused.value.code == Code.QUERIER_NOT_IN_BASIS
    assert app.max_position() == before
    lawful = app.request_provision(
        Actor(C, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert lawful.status == "answered"


def test_the_pension_office_asks_under_the_pension_row_only(make_node: NodeFactory, person: Callable[[], str]) -> None:
    """Peer agency: the pension office D (a national agency) is answered under item 48 (国民年金, asked by
    厚生労働大臣), and refused under a municipality's item 74 even with the right procedure and kind."""
    node = make_node((AgencySpec(B, "B市", "municipality"), AgencySpec(D, "D年金事務所", "national")))
    x = person()
    answer = node.app.request_provision(Actor(D, "counter"), B, x, **PENSION)
    assert answer.status == "answered"
    before = node.app.max_position()
    with pytest.raises(RuleViolation) as refused:
        node.app.request_provision(
            Actor(D, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    assert refused.value.code == Code.QUERIER_NOT_IN_BASIS and "national" in str(refused.value)
    assert node.app.max_position() == before


def test_http_and_cli_refuse_a_querier_of_another_kind(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Peer agency over the API and on the command line: municipality A asking under the pension item is 409 /
    exit 5 ``querier_not_in_basis``; the catalogue shows each row's querier kinds so the refusal can be read."""
    http, headers = client(sqlite_node), auth(sqlite_node, A, "counter")
    ask = {"provider": B, "subject": person(), **PENSION}
    refused = http.post("/api/v1/provision-requests", json=ask, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == Code.QUERIER_NOT_IN_BASIS
    rows = {r["item"]: r for r in http.get("/api/v1/law-catalogue", headers=headers).json()["rows"]}
    assert rows[48]["querier_kinds"] == ["national"] and rows[48]["url"].startswith("https://")
    _cli_refuses(sqlite_node, capsys, f"{SC}/counter", B, person(), Code.QUERIER_NOT_IN_BASIS)


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


def test_the_hub_routes_no_query_from_or_to_an_agency_imported_without_a_kind(tmp_path: Path) -> None:
    """Peer agency whose entry the hub's administrator imported without a kind (an export made before kinds, or
    `import` given none): the law's rows name who may ask and who provides by kind, so such an agency can neither
    ask nor be asked — parked ``querier_not_in_basis`` / ``provider_not_in_basis`` with what to do, nothing
    reaches the provider; once its entry names its kind the same query is routed."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    try:
        broker = MemoryBroker()
        w = World.open(Cast.of(HA, C), store, lambda p: MemoryTransport(broker, p))
        x = individual_number()
        w.agencies[HA].file_person(x)
        w.settle()
        kinds = dict(w.hub.directory.kinds)
        for kindless, code in ((C, Code.QUERIER_NOT_IN_BASIS), (HA, Code.PROVIDER_NOT_IN_BASIS)):
            w.hub.directory.kinds = {p: k for p, k in kinds.items() if p != kindless}
            w.agencies[C].query(x, HA, "児童手当", 74, "地方税関係情報")
            w.settle()
            [why] = [p for p in parked(store.engine) if p.code == code]
            assert kindless in why.reason and "--kind" in why.reason
            assert w.inbox(HA) == []
        w.hub.directory.kinds = kinds
        w.agencies[C].query(x, HA, "児童手当", 74, "地方税関係情報")
        w.settle()
        assert len(w.inbox(HA)) == 1
    finally:
        store.close()


def test_the_hub_and_the_querier_node_hold_the_pension_office_to_its_row(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """Peer agency: the pension office D (national in the hub's directory) asks A about Y under the pension row
    through the hub and is answered; its counter asking under A's municipality item 74 is refused at D's own
    node before anything is queued; and the same query sent straight on D's linkage end (its own keys, its
    node bypassed) is parked at the hub ``querier_not_in_basis`` and never reaches A."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (HA, D), kinds={D: "national"})
    try:
        y = individual_number()
        w.bridges[HA].file_person(y)
        w.settle()
        asked = w.bridges[D].ask(Actor(D, "counter"), HA, y, **PENSION)
        w.settle()
        assert w.bridges[D].query(asked)["status"] == "answered"
        with pytest.raises(RuleViolation) as refused:
            w.bridges[D].ask(
                Actor(D, "counter"), HA, y, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
            )
        assert refused.value.code == Code.QUERIER_NOT_IN_BASIS
        before = w.nodes[HA].app.max_position()
        code = code_of(w.nodes[D].app.subject(y))
        w.bridges[D].end.send(QueryMessage(uuid.uuid4().hex, code, HA, "児童手当", 74, "地方税関係情報"))
        w.settle()
        assert [p.code for p in parked(store.engine)] == [Code.QUERIER_NOT_IN_BASIS]
        assert w.nodes[HA].app.max_position() == before
    finally:
        w.close()
        store.close()


def test_a_provider_of_another_kind_is_neither_asked_nor_answers(node: Node, person: Callable[[], str]) -> None:
    """Peer agency asked for, or answering, what the law does not give it: municipality A asks the support
    centre SC (hosted here, a protection body) under item 74, whose provider is 市町村長 — from A's counter and
    as a peer node's query to SC alike, refused ``provider_not_in_basis`` naming the item and the kinds the law
    gives it, and no person; no provision record, no probe notice. The same query to municipality B is answered."""
    app, x = node.app, person()
    before = app.max_position()
    asked = {"legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"}
    with pytest.raises(RuleViolation) as refused:
        app.request_provision(Actor(A, "counter"), SC, x, **asked)
    message = str(refused.value)
    assert refused.value.code == Code.PROVIDER_NOT_IN_BASIS
    assert "legal_item 74" in message and "市町村長" in message and "municipality" in message
    assert "support_centre" in message and x not in message and app.subject(x) not in message
    with pytest.raises(RuleViolation) as refused:
        app.receive_query(A, SC, x, **asked)
    assert refused.value.code == Code.PROVIDER_NOT_IN_BASIS
    assert app.max_position() == before
    assert app.request_provision(Actor(A, "counter"), B, x, **asked).status == "answered"


def test_a_provider_of_another_kind_is_refused_after_a_restart(node: Node, person: Callable[[], str]) -> None:
    """Peer agency asking the support centre SC for what item 74 gives a municipality, after the node restarts:
    the node remembers a hosted agency's kind after its first query, and a reopened node reads it again from
    the verified log — refused ``provider_not_in_basis`` before and after, from A's counter and as a peer
    node's query, nothing recorded; the same query to municipality B is answered."""
    asked = {"legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"}
    for _ in range(2):  # the second time from the remembered kind
        with pytest.raises(RuleViolation) as refused:
            node.app.receive_query(A, SC, person(), **asked)
        assert refused.value.code == Code.PROVIDER_NOT_IN_BASIS
    assert node.app.hosted_kind(SC) == "support_centre" and node.app.hosted_kind(D) is None
    data_dir = node.config.data_dir
    node.close()
    again = open_node(data_dir)
    try:
        x, before = person(), again.app.max_position()
        with pytest.raises(RuleViolation) as refused:
            again.app.request_provision(Actor(A, "counter"), SC, x, **asked)
        assert refused.value.code == Code.PROVIDER_NOT_IN_BASIS
        with pytest.raises(RuleViolation) as refused:
            again.app.receive_query(A, SC, x, **asked)
        assert refused.value.code == Code.PROVIDER_NOT_IN_BASIS
        assert again.app.max_position() == before
        assert again.app.request_provision(Actor(A, "counter"), B, x, **asked).status == "answered"
    finally:
        again.close()


def test_http_and_cli_refuse_a_provider_of_another_kind(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Peer agency over the API and on the command line: A asking the support centre under item 74 is 409 /
    exit 5 ``provider_not_in_basis``; the catalogue shows each row's provider kinds so the refusal can be read."""
    http, headers = client(sqlite_node), auth(sqlite_node, A, "counter")
    ask = {
        "provider": SC,
        "subject": person(),
        "legal_item": 74,
        "procedure": "児童手当",
        "info_kind": "地方税関係情報",
    }
    refused = http.post("/api/v1/provision-requests", json=ask, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == Code.PROVIDER_NOT_IN_BASIS
    rows = {r["item"]: r for r in http.get("/api/v1/law-catalogue", headers=headers).json()["rows"]}
    assert all(r["provider_kinds"] == ["municipality"] for r in rows.values())
    _cli_refuses(sqlite_node, capsys, f"{A}/counter", SC, person(), Code.PROVIDER_NOT_IN_BASIS)


def test_the_hub_refuses_to_relay_a_query_to_a_provider_of_another_kind(make_node: NodeFactory, tmp_path: Path) -> None:
    """Peer agency talking to the network directly (its own keys, its node bypassed), asking a support centre
    (support_centre in the hub's directory) for what item 74 gives a municipality: parked at the hub
    ``provider_not_in_basis`` before it is routed — no request row, nothing reaches SC's node; the same query to
    municipality A is routed and answered."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (HA, C, SC), kinds={SC: "support_centre"})
    try:
        y = individual_number()
        for agency in (HA, SC):
            w.bridges[agency].file_person(y)
        w.settle()
        before = w.nodes[SC].app.max_position()
        code = code_of(w.nodes[C].app.subject(y))
        w.bridges[C].end.send(QueryMessage(uuid.uuid4().hex, code, SC, "児童手当", 74, "地方税関係情報"))
        w.settle()
        assert [p.code for p in parked(store.engine)] == [Code.PROVIDER_NOT_IN_BASIS]
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(hub_requests)).scalar() == 0
        assert w.nodes[SC].app.max_position() == before
        asked = w.bridges[C].ask(
            Actor(C, "counter"), HA, y, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        w.settle()
        assert w.bridges[C].query(asked)["status"] == "answered"
    finally:
        w.close()
        store.close()


def _cli_refuses(node: Node, capsys: pytest.CaptureFixture[str], asker: str, provider: str, subject: str,
                 code: str) -> None:  # fmt: skip
    """`provision request` under item 74 as ``asker`` of ``provider``: exit 5 naming ``code``."""
    d = str(node.config.data_dir)
    argv = ["--data-dir", d, "provision", "request", "--as", asker, "--provider", provider, "--subject", subject,
            "--item", "74", "--procedure", "児童手当", "--info-kind", "地方税関係情報"]  # fmt: skip
    capsys.readouterr()
    assert cli(argv) == 5
    assert code in capsys.readouterr().err
