"""The protecting agency hears of every probe: a request about a person it protects lands in its work queue
(requesting agency, procedure, time), on its own node or through ingest from another node; the querier and
the counter staff anyone can talk to learn nothing from it."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor, QuerierAnswer
from ledger.cli.main import main
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B, C
from tests.support.trust import agency_pair

NAR, ND = "NO_AUTO_RESPONSE", "NON_DISCLOSURE"


def protect(node: Node, at: str, subject: str, flags: list[str]) -> None:
    rid = node.app.request_flags(Actor(at, "req"), subject, flags)
    node.app.approve_request(Actor(at, "apr"), rid)
    node.app.execute_request(Actor(at, "op"), rid)


def ask(
    node: Node, querier: str, provider: str, subject: str, procedure: str = "児童手当", item: int = 74
) -> QuerierAnswer:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, subject, legal_item=item, procedure=procedure, info_kind="地方税関係情報"
    )


def test_every_holder_hears_of_held_and_answered_requests_and_nobody_else_does(node: Node, person) -> None:
    x, y = person(), person()
    protect(node, B, x, [NAR, ND])
    protect(node, C, x, [ND])
    protect(node, B, y, [ND])
    held = ask(node, A, B, x, "児童手当")
    answered_y = ask(node, B, A, y, "児童扶養手当", 57)  # ND only on Y: answered automatically, still a probe
    unprotected = ask(node, A, C, person())
    assert (held.status, answered_y.status, unprotected.status) == ("in_progress", "answered", "answered")
    b_probes = {p.request_id: p for p in views.work_queue(node, Actor(B, "rev")).probes}
    assert set(b_probes) == {held.request_id, answered_y.request_id}
    p = b_probes[held.request_id]
    assert (p.querier, p.provider, p.procedure, p.legal_item, p.subject) == (A, B, "児童手当", 74, node.app.subject(x))
    assert p.at[:4].isdigit()
    assert b_probes[answered_y.request_id].querier == B and b_probes[answered_y.request_id].provider == A
    assert [q.request_id for q in views.work_queue(node, Actor(C, "apr")).probes] == [held.request_id]
    # the querier, and counter staff anywhere (the probe names the querying agency), see no notice
    assert views.work_queue(node, Actor(A, "rev")).probes == ()
    for agency in (A, B, C):
        assert views.work_queue(node, Actor(agency, "counter")).probes == ()
    # and the querier's answer is any slow manual answer
    assert (held.status, held.message) == ("in_progress", QuerierAnswer.IN_PROGRESS)


def test_a_rebuild_gives_the_same_probe_queue(sqlite_node: Node, person) -> None:
    x = person()
    protect(sqlite_node, B, x, [NAR, ND])
    ask(sqlite_node, A, B, x)
    before = views.work_queue(sqlite_node, Actor(B, "rev")).probes
    sqlite_node.projector.rebuild(["work_queues"])
    assert views.work_queue(sqlite_node, Actor(B, "rev")).probes == before and len(before) == 1


@pytest.fixture
def two_nodes(make_node, tmp_path: Path) -> tuple[Node, Node]:
    return agency_pair(make_node, tmp_path)


def ship(src: Node, dst: Node, after: int = 0) -> int:
    pending = PendingStore(dst.app, dst.engine)
    last = after
    for position, _, raw in publishable(src.app, after):
        assert ingest(dst.app, raw, pending).kind in ("applied", "duplicate")
        last = position
    return last


def test_a_request_held_on_another_node_reaches_the_protecting_agency_s_queue(two_nodes, person) -> None:
    a, b = two_nodes
    x = person()
    protect(b, B, x, [NAR, ND])
    ship(b, a)
    held = ask(a, A, A, x, "児童扶養手当", 57)  # held at A's node: it learnt of B's flags through ingest
    assert held.status == "in_progress"
    assert views.work_queue(b, Actor(B, "rev")).probes == (), "nothing has travelled yet"
    ship(a, b)
    (probe,) = views.work_queue(b, Actor(B, "rev")).probes
    assert (probe.request_id, probe.querier, probe.provider, probe.procedure) == (held.request_id, A, A, "児童扶養手当")
    assert probe.subject == b.app.subject(x)
    # a query from B's node, delivered by the network to A's node, is a probe too
    remote = a.app.receive_query(B, A, x, legal_item=57, procedure="児童扶養手当", info_kind="地方税関係情報")
    assert remote.status == "in_progress"
    ship(a, b)
    assert {p.request_id for p in views.work_queue(b, Actor(B, "apr")).probes} == {held.request_id, remote.request_id}
    # A's node keeps the notices too, but A protects nobody: no queue there shows them
    assert views.work_queue(a, Actor(A, "rev")).probes == ()
    assert views.work_queue(b, Actor(B, "counter")).probes == ()
    # B's node learns the request's status like any other: the querier's answer reads the same
    assert b.app.querier_answer(UUID(held.request_id)) == held


def test_view_queue_lists_probe_notices(two_nodes, person, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_nodes
    x = person()
    protect(b, B, x, [NAR, ND])
    ship(b, a)
    held = ask(a, A, A, x)
    ship(a, b)
    b.close()  # the CLI opens the node itself
    assert main(["--data-dir", str(b.config.data_dir), "view", "queue", "--as", f"{B}/rev"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(p["request_id"], p["querier"]) for p in out["probes"]] == [(held.request_id, A)]
