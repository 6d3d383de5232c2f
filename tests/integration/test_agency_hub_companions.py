"""Companions in hub mode (issue 19 with issue 21's 同伴者): X flees to B with her child K. The case and the
companion's listing stay in B's own log; what reaches the hub is each person's flags under B's own code for
them, so a query about K is held like one about X, and K's move is a handover of its own. Three nodes in hub
mode and an in-process hub (tests/support/hub_nodes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from ledger.app import Actor
from ledger.hub.tables import hub_codes, hub_flag_changes
from ledger.runtime.linkage import code_of
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_mode import _world
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path)


def _chain(app: object, agency: str, rid: object) -> None:
    app.approve_request(Actor(agency, "apr"), rid)  # type: ignore[attr-defined]
    app.execute_request(Actor(agency, "op"), rid)  # type: ignore[attr-defined]


def test_a_companion_is_protected_through_the_hub_and_moves_with_its_own_handover(world: HubNodes) -> None:
    """Perpetrator asking at C about the child (Y, K's parent, applies for child allowance); insider at the hub
    (what ties K to X there): B protects X on a case and attaches K with four eyes; the hub files K's flags
    under B's code for K, and C's query to A about K is held for staff like one about X; no row of the hub's
    database names both X and K (the case and the relation stay at B). X and K move on to C: C is asked to
    take over each, under its own code for each."""
    x, k, y = individual_number(), individual_number(), individual_number()
    b = world.nodes[B].app
    case = b.open_case(Actor(B, "req"), x, perpetrators=[y])
    _chain(b, B, b.request_flags(Actor(B, "req"), x, [ND, NAR], case_id=case))
    _chain(b, B, b.propose_companion(Actor(B, "req"), case, k))
    assert b.case(case).attached_companions == [b.subject(k)]
    for number in (x, k):
        world.bridges[A].file_person(number)
    world.settle()

    with world.hub.store.engine.connect() as conn:
        changes = conn.execute(select(hub_flag_changes.c.person, hub_flag_changes.c.flag)).all()
        persons = {
            n: conn.execute(select(hub_codes.c.person).where(hub_codes.c.code == c)).scalar_one()
            for n, c in ((x, code_of(b.subject(x))), (k, code_of(b.subject(k))))
        }
    assert sorted(changes) == sorted((persons[n], f) for n in (x, k) for f in (ND, NAR))
    meta = MetaData()
    meta.reflect(world.hub.store.engine)
    with world.hub.store.engine.connect() as conn:
        rows = [" ".join(map(str, r)) for t in meta.sorted_tables for r in conn.execute(select(t))]
    assert any(persons[k] in r for r in rows)  # the search finds K's id
    assert not any(persons[x] in r and persons[k] in r for r in rows), "a hub row ties the child to the mother"

    c = world.bridges[C]
    asked = c.ask(Actor(C, "counter"), A, k, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    assert c.query(asked)["status"] == "in_progress"
    assert [x["subject"] for x in world.bridges[B].consultations()] == [b.subject(k)]

    for number in (x, k):
        assert b.record_move(Actor(B, "req"), number, to_agency=C, moved_on=date(2026, 9, 1)) is not None
        world.bridges[C].file_person(number)
    world.settle()
    at_c = world.nodes[C].app
    asked_c = {h["subject"]: h["flags_to_take_over"] for h in at_c.handovers_for(C)}
    assert asked_c == {at_c.subject(x): [ND, NAR], at_c.subject(k): [ND, NAR]}
