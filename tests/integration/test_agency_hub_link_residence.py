"""Only the residence links a person's numbers, by the hub's own order (issue 21, hub mode; docs/operations.md
"Number changes"): the hub takes a ``number_link`` only from the municipality the latest move of either number
it filed before the link went to, or from any when it filed none — its sequence decides, no clock is compared.
Three nodes in hub mode and an in-process hub (tests/support/hub_nodes.py), SQLite and PostgreSQL, the memory
transport.

The hole it closes: X lived at A and moved to C; the move is recorded only at C (転入), so A's node never hears of
it and approves a link of X's number to a stranger's as the residence it once was — in shared mode a peer cannot
tell it from a genuine link with the move in flight. Through the hub the move was filed first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import Code
from ledger.hub.tables import hub_link_makers, hub_links, hub_moves, hub_parked
from ledger.linkage.codes import persons_of
from ledger.runtime.linkage import code_of
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_mode import _world
from tests.support.hub_nodes import HubNodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

ND = "NON_DISCLOSURE"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path)


def _rows(w: HubNodes, table: object) -> list[tuple[object, ...]]:
    with w.hub.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table))]  # type: ignore[call-overload]


def _parked(w: HubNodes) -> list[tuple[str, str]]:
    with w.hub.store.engine.connect() as conn:
        return [(str(r.code), str(r.reason)) for r in conn.execute(select(hub_parked))]


def _link(w: HubNodes, agency: str, old: str, new: str) -> None:
    """Four eyes at ``agency``: its node approves the number change (its own residence check passes)."""
    app = w.nodes[agency].app
    app.approve_link(Actor(agency, "apr"), app.request_link(Actor(agency, "req"), old, new, "個人番号の変更"))


def _joined(w: HubNodes, agency: str, number: str) -> int:
    """How many numbers the hub holds as one person with ``number`` (registered by ``agency``)."""
    codes = w.hub.store.codes
    person = codes.person(agency, code_of(w.nodes[agency].app.subject(number)))
    assert person is not None
    return len(persons_of(codes, person))


def _moved_to_c(w: HubNodes, x: str) -> None:
    """X, protected at A and at C, moves A → C, recorded only at C (転入): A's node never hears of it."""
    set_flag(w.nodes[A], A, x, ND)
    set_flag(w.nodes[C], C, x, ND)  # C protects X too, so it may report the move (ledger/hub/moves.py)
    assert w.nodes[C].app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=A, moved_on=date(2026, 4, 1))
    w.settle()
    assert len(_rows(w, hub_moves)) == 1


def test_a_former_residence_cannot_link_after_the_move_away_was_filed_at_the_hub(world: HubNodes) -> None:
    """Peer agency (a former residence) linking a victim's number to a stranger's, so the stranger's card would
    show her records and her protection would seem to cover him: X moved A → C, recorded only at C and filed at
    the hub; A's node, which knows no move, approves the link — the hub parks it ``not_residence`` (naming neither
    C nor the move), the numbers stay two people. C, the residence, links X's number to her real new one:
    filed, C its maker; the hub parks nothing else."""
    x, stranger, real = individual_number(), individual_number(), individual_number()
    _moved_to_c(world, x)

    _link(world, A, x, stranger)  # A's node: no move known there, any municipality may (docs/operations.md)
    world.settle()
    [(code, reason)] = _parked(world)
    assert code == Code.NOT_RESIDENCE and "no longer live there" in reason
    assert C not in reason and A not in reason  # the refusal names no municipality
    assert _rows(world, hub_links) == [] and _rows(world, hub_link_makers) == []
    assert _joined(world, A, x) == 1 and _joined(world, A, stranger) == 1

    _link(world, C, x, real)
    world.settle()
    assert len(_rows(world, hub_links)) == 1 and [m[2] for m in _rows(world, hub_link_makers)] == [C]
    assert _joined(world, C, real) == 2
    assert len(_parked(world)) == 1


def test_a_link_filed_before_the_move_away_stands(world: HubNodes) -> None:
    """Peer agency (the same rule must not refuse a genuine act): A, the residence, links X's number to her new
    one and the hub files it; only then does C record her 転入 from A. The link stands (judged by the moves filed
    before it: none), the move is filed after it, the hub parks nothing."""
    x, new = individual_number(), individual_number()
    set_flag(world.nodes[A], A, x, ND)
    _link(world, A, x, new)
    world.settle()
    assert len(_rows(world, hub_links)) == 1

    set_flag(world.nodes[C], C, x, ND)
    assert world.nodes[C].app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=A, moved_on=date(2026, 4, 1))
    world.settle()
    assert len(_rows(world, hub_moves)) == 1
    assert len(_rows(world, hub_links)) == 1 and [m[2] for m in _rows(world, hub_link_makers)] == [A]
    assert _joined(world, A, new) == 2
    assert _parked(world) == []


def test_the_new_residence_linking_before_the_move_to_it_reaches_the_hub_links_again(world: HubNodes) -> None:
    """Peer agency (the rule's one false refusal, and its remedy): X, protected at A, moved A → C (filed); C
    records her move on to B (転出 at C) and B links her number before C's node has pushed the move: by the hub's
    order C is still the residence, so B's link is parked ``not_residence``. B undoes and makes the link again
    (four eyes each): the unlink changes nothing at the hub, the relink, after the move, is filed."""
    x, new = individual_number(), individual_number()
    _moved_to_c(world, x)
    assert world.nodes[C].app.record_move(Actor(C, "req"), x, to_agency=B, moved_on=date(2026, 9, 1))
    _link(world, B, x, new)
    world.bridges[B].push()
    world.hub.step(timeout_ms=20)  # B's link first: the move to B is still at C
    world.settle()
    assert [c for c, _ in _parked(world)] == [Code.NOT_RESIDENCE]
    assert len(_rows(world, hub_moves)) == 2 and _rows(world, hub_links) == []

    b = world.nodes[B].app
    b.approve_link(Actor(B, "apr"), b.request_unlink(Actor(B, "req"), x, "ハブで保留: 転入前の紐付け"))
    world.settle()
    _link(world, B, x, new)
    world.settle()
    assert len(_rows(world, hub_links)) == 1 and [m[2] for m in _rows(world, hub_link_makers)] == [B]
    assert _joined(world, B, new) == 2 and len(_parked(world)) == 1
