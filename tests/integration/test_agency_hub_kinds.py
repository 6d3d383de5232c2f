"""The hub checks the sender's agency kind (issue 19): a move and a number link only from a municipality, a
protection-body request
only from a protection body — by the kind the hub's administrator accepted with the agency's directory entry
(``linkage directory import``), not by the sender's own node, which a peer with its own keys does not need to run.

Each message here is sent straight on the sender's linkage end, as a peer bypassing its node's own checks would,
and is one the hub would take from a sender of the right kind; only the kind tells them apart. Nodes in hub mode
and an in-process hub (tests/support/hub_nodes.py), SQLite or throw-away PostgreSQL databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.domain.types import AgencyKind
from ledger.errors import Code
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_body_requests, hub_links, hub_moves, hub_parked
from ledger.linkage.body_requests import BodyRequestMessage
from ledger.linkage.messages import LinkMessage
from ledger.linkage.moves import MoveMessage
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_body_requests
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_mode import _count
from tests.support.hub_nodes import HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B
from tests.support.people import individual_number
from tests.support.postgres import temp_database

SC = "SC-TOKYO"  # a support centre (配偶者暴力相談支援センター), a protection body
ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


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


def _parked(w: HubNodes) -> list[tuple[str, str, str]]:
    p = hub_parked.c
    with w.hub.store.engine.connect() as conn:
        return [(str(s), str(c), str(r)) for s, c, r in conn.execute(select(p.claimed_sender, p.code, p.reason))]


def _rows(w: HubNodes, table: object) -> int:
    with w.hub.store.engine.connect() as conn:
        return len(conn.execute(select(table)).all())  # type: ignore[call-overload]


def _move(w: HubNodes, agency: str, number: str, to_agency: str) -> None:
    code = code_of(w.nodes[agency].app.subject(number))
    w.bridges[agency].end.send(MoveMessage(uuid.uuid4().hex, code, agency, to_agency, "2026-04-01"))


def test_a_move_is_taken_only_from_a_municipality(world: HubNodes) -> None:
    """Peer agency of the wrong kind handing over protection: A protects X; while the hub's directory holds A
    as a support centre (or as of no kind: an entry imported without one), A's report that X moved to B is
    parked ``wrong_agency`` — nothing filed, B is sent no handover; the same report once A is a municipality
    again is filed and B is handed X. A support centre's own claim that X moved to it is parked alike."""
    x = individual_number()
    set_flag(world.nodes[A], A, x, ND)
    world.bridges[B].file_person(x)
    world.bridges[SC].file_person(x)
    world.settle()
    directory = world.hub.directory
    assert directory.kind_of(A) is AgencyKind.MUNICIPALITY and directory.kind_of(SC) is AgencyKind.SUPPORT_CENTRE

    directory.kinds[A] = AgencyKind.SUPPORT_CENTRE  # as if the administrator had imported A as a centre
    _move(world, A, x, B)
    world.settle()
    del directory.kinds[A]  # as if imported with no kind
    _move(world, A, x, B)
    world.settle()
    code = code_of(world.nodes[SC].app.subject(x))  # the centre: X moved from A to the centre
    world.bridges[SC].end.send(MoveMessage(uuid.uuid4().hex, code, A, SC, "2026-04-01"))
    world.settle()
    parked = _parked(world)
    assert [(s, c) for s, c, _ in parked] == [(A, Code.WRONG_AGENCY), (A, Code.WRONG_AGENCY), (SC, Code.WRONG_AGENCY)]
    assert "support_centre" in parked[0][2] and "no kind" in parked[1][2] and "municipality" in parked[2][2]
    assert _rows(world, hub_moves) == 0 and world.nodes[B].app.handovers_for(B) == []

    directory.kinds[A] = AgencyKind.MUNICIPALITY
    assert world.nodes[A].app.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1))
    world.settle()
    assert _rows(world, hub_moves) == 1 and len(_parked(world)) == 3
    assert [h["flags_to_take_over"] for h in world.nodes[B].app.handovers_for(B)] == [[ND]]


def test_a_body_request_is_taken_only_from_a_protection_body(world: HubNodes) -> None:
    """Peer agency of the wrong kind sending a body request (municipality A asking B to protect X "as a
    support centre", to have B act on a body's word): parked ``wrong_agency``, nothing filed, B is sent
    nothing. The centre's own request, and the same from A once the hub's directory holds A as the police,
    are routed — so it is the kind, not the message, that refuses."""
    x = individual_number()
    for agency in (A, B, SC):
        world.bridges[agency].file_person(x)
    world.settle()

    def ask(agency: str) -> None:
        code = code_of(world.nodes[agency].app.subject(x))
        world.bridges[agency].end.send(BodyRequestMessage(uuid.uuid4().hex, code, B, NAR, "stalking"))
        world.settle()
        world.settle()

    ask(A)
    assert [(s, c) for s, c, _ in _parked(world)] == [(A, Code.WRONG_AGENCY)]
    assert "protection body" in _parked(world)[0][2]
    assert _rows(world, hub_body_requests) == 0 and _count(world, B, linkage_body_requests) == 0

    ask(SC)
    assert _rows(world, hub_body_requests) == 1 and _count(world, B, linkage_body_requests) == 1
    world.hub.directory.kinds[A] = AgencyKind.POLICE
    ask(A)
    assert _rows(world, hub_body_requests) == 2 and _count(world, B, linkage_body_requests) == 2
    assert len(_parked(world)) == 1


def test_a_number_link_is_taken_only_from_a_municipality(world: HubNodes) -> None:
    """Peer agency of the wrong kind joining a victim's number to another (番号の変更 is the residence
    municipality's act): the support centre's link of X's number to Y's, both registered by it, is parked
    ``wrong_agency`` and nothing is linked; its link of two codes it never registered is parked the same —
    the kind is checked before the person is looked at (else: an unknown code); A's link while the hub's
    directory holds A as of no kind is parked alike. The same link from A, a municipality again, is filed."""
    x, y = individual_number(), individual_number()
    for agency in (A, SC):
        for number in (x, y):
            world.bridges[agency].file_person(number)
    world.settle()

    def link(agency: str, old: str, new: str) -> None:
        codes = [code_of(world.nodes[agency].app.subject(n)) for n in (old, new)]
        world.bridges[agency].end.send(LinkMessage(*codes))
        world.settle()

    link(SC, x, y)
    link(SC, individual_number(), individual_number())  # never registered at the hub
    del world.hub.directory.kinds[A]  # as if imported with no kind
    link(A, x, y)
    parked = _parked(world)
    assert [(s, c) for s, c, _ in parked] == [(SC, Code.WRONG_AGENCY), (SC, Code.WRONG_AGENCY), (A, Code.WRONG_AGENCY)]
    assert "support_centre" in parked[0][2] and "support_centre" in parked[1][2] and "no kind" in parked[2][2]
    assert _rows(world, hub_links) == 0

    world.hub.directory.kinds[A] = AgencyKind.MUNICIPALITY
    link(A, x, y)
    assert _rows(world, hub_links) == 1 and len(_parked(world)) == 3
