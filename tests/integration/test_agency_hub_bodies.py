"""Protection-body requests through the hub (issue 19 with docs/bodies.md): a support centre in hub mode asks
municipality B to protect X; the request reaches B under B's own code once B knows X, B answers with its own
four eyes, and the centre reads each step — relayed by the hub only from B. Nodes in hub mode and an in-process
hub (tests/support/hub_nodes.py), each on its own database (SQLite, or throw-away PostgreSQL databases).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import Code
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_body_requests, hub_parked
from ledger.linkage.body_requests import BodyOutcomeMessage
from ledger.runtime.tables import linkage_applied, linkage_body_outcomes, linkage_body_requests
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_mode import _all_rows, _count, names
from tests.support.approvals import approve_fully
from tests.support.hub_nodes import HubNodes, hub_nodes
from tests.support.hub_world import A, B
from tests.support.people import individual_number
from tests.support.postgres import temp_database

SC = "SC-TOKYO"  # a support centre (配偶者暴力相談支援センター), a protection body
NAR = "NO_AUTO_RESPONSE"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    with ExitStack() as stack:
        if backend is None:
            urls: dict[str, str | None] = {}
            hub_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
        else:
            urls = {c: stack.enter_context(temp_database()) for c in (A, B, SC)}
            hub_url = stack.enter_context(temp_database())
        store = open_hub_store(hub_url, "hub-1")
        w = hub_nodes(make_node, store, (A, B, SC), urls, kinds={SC: "support_centre"})
        yield w
        w.close()
        store.close()


def _hub(w: HubNodes, table: object) -> list[object]:
    with w.hub.store.engine.connect() as conn:
        return list(conn.execute(select(table)))  # type: ignore[call-overload]


def test_a_body_asks_a_municipality_through_the_hub_and_reads_only_its_answer(world: HubNodes) -> None:
    """Peer agency forging a municipality's answer (A marks the centre's request "executed"); insider at a
    non-party (A learns nothing of the request); the perpetrator (X protected in the end): the centre's request
    waits at the hub until B files X, then reaches B under B's code; A's forged outcome is parked (not_found)
    and the centre hears nothing of it; B requests, approves and executes with the request named, and the
    centre reads the three steps, from B; X's flag at B reaches the hub as any flag change."""
    x = individual_number()
    sc, b = world.nodes[SC].app, world.nodes[B].app
    sent = sc.send_body_request(Actor(SC, "req"), B, x, [NAR], "stalking")
    heard_by_a = _count(world, A, linkage_applied)
    world.settle()
    (routed,) = _hub(world, hub_body_requests)
    assert routed.delivered is False and b.body_inbox(Actor(B, "req")) == []  # type: ignore[attr-defined]

    world.bridges[B].file_person(x)  # X at B's counter: now B can be told under its own code
    world.settle()
    (inbox,) = b.body_inbox(Actor(B, "req"))
    assert inbox["body"] == SC and inbox["flags"] == [NAR] and inbox["status"] == "sent"
    with world.nodes[B].engine.connect() as conn:
        (kept,) = conn.execute(select(linkage_body_requests)).all()
    assert kept.subject == b.subject(x) and kept.id != sent.hex  # B's subject; the hub's id, not the centre's

    hub_id = inbox["body_request_id"]
    forged = BodyOutcomeMessage(UUID(hub_id).hex, "executed", "set", UUID(int=7).hex, NAR, "2026-04-01T00:00:00+00:00")
    world.bridges[A].end.send(forged)
    world.settle()
    assert [p.code for p in _hub(world, hub_parked)] == [Code.NOT_FOUND]  # type: ignore[attr-defined]
    assert sc.body_request_outcome(Actor(SC, "req"), sent)["status"] == "sent"

    rid = b.request_flags(Actor(B, "req"), x, [NAR], body_request_id=UUID(hub_id))
    approve_fully(b, B, rid)
    b.execute_request(Actor(B, "op"), rid)
    world.settle()
    seen = sc.body_request_outcome(Actor(SC, "req"), sent)
    assert seen["status"] == "executed" and seen["municipality"] == B
    assert [o["status"] for o in seen["outcomes"]] == ["requested", "approved", "executed"]
    assert {o["flag_request_id"] for o in seen["outcomes"]} == {str(rid)}
    assert b.flag_state is not None and b.flag_state.flags_for(b.subject(x)) == {NAR: [B]}

    # A, no party to the request, received nothing and keeps nothing of it
    assert _count(world, A, linkage_applied) == heard_by_a
    assert _count(world, A, linkage_body_requests) == 0 and _count(world, A, linkage_body_outcomes) == 0
    assert not names(_all_rows(world, A), SC)
    assert len(_hub(world, hub_parked)) == 1
