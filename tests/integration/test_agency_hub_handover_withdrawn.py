"""A handover withdrawn through the hub (issue 19 with issue 21): X, protected at A, moves A → B and on again
before B took over (or after). The hub withdraws B's request — under B's own code, naming neither where X went nor
who reported it — and asks the municipality X lives in now, so no municipality X has left holds a live request
about her. Three nodes in hub mode and an in-process hub (tests/support/hub_nodes.py), SQLite and PostgreSQL.

Threats, per test: the perpetrator (a stale request at a municipality X has left, or a protection nobody is
asked to take over, leaves X unprotected where she lives); a peer agency (only the municipality entitled to
report X's move can make the hub withdraw a request).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import Code, StateConflict
from ledger.linkage.moves import MoveMessage
from ledger.runtime.handovers import IN
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_handovers, linkage_handovers_withdrawn
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_handover import ND, _events, _moves, _parked, _release
from tests.integration.test_agency_hub_mode import _all_rows, _world, names
from tests.support.hub_nodes import HubNodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path)


WITHDRAWN = "withdrawn"  # a row of linkage_handovers_withdrawn


def _directions(w: HubNodes, agency: str) -> list[str]:
    """The kinds of handover rows the agency keeps: ``in``/``out`` and, for a withdrawn one, ``withdrawn``."""
    with w.nodes[agency].engine.connect() as conn:
        kept = [str(d) for d in conn.execute(select(linkage_handovers.c.direction)).scalars()]
        kept += [WITHDRAWN for _ in conn.execute(select(linkage_handovers_withdrawn.c.id))]
    return sorted(kept)


def _asked(w: HubNodes, x: str) -> str:
    """A protects X, B and C have filed X; A reports X's move to B, and B is asked."""
    set_flag(w.nodes[A], A, x, ND)
    w.bridges[B].file_person(x)
    w.bridges[C].file_person(x)
    w.settle()
    assert w.nodes[A].app.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1)) is not None
    w.settle()
    (asked,) = w.nodes[B].app.handovers_for(B)
    return str(asked["move_id"])


def test_x_moves_on_before_b_takes_over_and_c_is_asked_instead(world: HubNodes) -> None:
    """The perpetrator, waiting for protection to lapse where X lives: X moves A → B and on to C before B took
    over. B, asked but holding nothing, records the move on (its request is what tells it she is protected);
    the hub withdraws B's request and asks C, so B's queue no longer names X and C's does, naming neither A nor
    B. A keeps protecting X meanwhile (its release is refused); once C holds, B hears that C does and A that
    its handover is done (not where), and A lets go as in shared mode."""
    x = individual_number()
    a, b, c = (world.nodes[k].app for k in (A, B, C))
    _asked(world, x)

    assert b.record_move(Actor(B, "req"), x, to_agency=C, moved_on=date(2026, 5, 1)) is not None
    world.settle()
    assert b.handovers_for(B) == []  # withdrawn: B is not where X lives any more
    assert _directions(world, B) == [WITHDRAWN]  # kept, not erased: B's record of what it was asked
    (asked_c,) = c.handovers_for(C)
    assert asked_c["subject"] == c.subject(x) and asked_c["flags_to_take_over"] == [ND]
    assert asked_c["moved_on"] == "2026-05-01"
    assert not names(_all_rows(world, C), A) and not names(_all_rows(world, C), B)
    assert not any(names(e, A) or names(e, B) for e in _events(world, C))
    with pytest.raises(StateConflict) as refused:  # A still holds X: nobody has taken over yet
        _release(world, A, x)
    assert refused.value.code == Code.HANDOVER_PENDING

    set_flag(world.nodes[C], C, x, ND)
    world.settle()
    assert c.handovers_for(C) == [] and b.handovers_for(B) == []
    assert b.holders_anywhere(b.subject(x))[ND] == [C]  # B, the reporter, told that C holds
    # A, still waiting on the move it reported, is told its handover is done — naming no C — and may let go
    # without a decision naming the risk, as in shared mode (tests/integration/test_year_handover.py)
    assert a.holders_anywhere(a.subject(x))[ND] == [A]
    assert not names(_all_rows(world, A), C) and not any(names(e, C) for e in _events(world, A))
    _release(world, A, x)
    world.settle()
    assert ND not in a.holders_anywhere(a.subject(x))
    assert _moves(world) == 2 and _parked(world) == []


def test_a_request_taken_over_is_withdrawn_too_so_it_does_not_come_back_after_a_release(world: HubNodes) -> None:
    """The perpetrator at B's counter after X has left: B took over, X moved on to C, C took over and B let go.
    Without the withdrawal B's old request would stand again in its queue once B holds nothing (an 'in' row
    the queue filtered only by what B holds), naming X at a municipality she left."""
    x = individual_number()
    b = world.nodes[B].app
    _asked(world, x)
    set_flag(world.nodes[B], B, x, ND)
    world.settle()
    _release(world, A, x)
    assert b.record_move(Actor(B, "req"), x, to_agency=C, moved_on=date(2026, 9, 1)) is not None
    world.settle()
    set_flag(world.nodes[C], C, x, ND)
    world.settle()
    _release(world, B, x)
    world.settle()
    assert b.handovers_for(B) == []
    assert b.year_queue(Actor(B, "req"))["handovers"] == []
    assert WITHDRAWN in _directions(world, B) and IN not in _directions(world, B)


def test_x_moving_back_to_her_holder_withdraws_the_request_and_asks_no_one(world: HubNodes) -> None:
    """The perpetrator: X moves A → B and back to A, A reporting it (A protects her and she lives there again).
    B's request is withdrawn; A, holding already, is asked nothing; and no one else hears of it."""
    x = individual_number()
    a, b, c = (world.nodes[k].app for k in (A, B, C))
    _asked(world, x)
    assert a.record_move(Actor(A, "req"), x, to_agency=A, from_agency=B, moved_on=date(2026, 6, 1)) is not None
    world.settle()
    assert b.handovers_for(B) == [] and a.handovers_for(A) == [] and c.handovers_for(C) == []
    assert _directions(world, C) == [] and _parked(world) == []


def test_only_the_municipality_entitled_to_report_the_move_on_withdraws_a_request(world: HubNodes) -> None:
    """A peer agency, with its own valid keys, trying to strip B of its request (so that nobody where X lives
    takes over): C, neither holding X nor where she lives, reports that X moved from B to C; A, the holder,
    reports a move from B to C it is no party to; and A reports X moved from C (not where she lives) to A.
    Each is parked; B's request stands, and C is asked nothing."""
    x = individual_number()
    b, c = world.nodes[B].app, world.nodes[C].app
    _asked(world, x)
    c_code = code_of(c.subject(x))
    world.bridges[C].end.send(MoveMessage(uuid.uuid4().hex, c_code, B, C, "2026-05-01"))
    a_code = code_of(world.nodes[A].app.subject(x))
    world.bridges[A].end.send(MoveMessage(uuid.uuid4().hex, a_code, B, C, "2026-05-01"))
    world.bridges[A].end.send(MoveMessage(uuid.uuid4().hex, a_code, C, A, "2026-05-01"))
    world.settle()
    assert _parked(world) == [Code.WRONG_AGENCY, Code.WRONG_AGENCY, Code.NOT_RESIDENCE]
    assert _moves(world) == 1
    assert [h["flags_to_take_over"] for h in b.handovers_for(B)] == [[ND]] and _directions(world, B) == [IN]
    assert c.handovers_for(C) == [] and _directions(world, C) == []


def test_the_word_that_a_handover_was_done_onward_counts_for_that_move_only(world: HubNodes) -> None:
    """The perpetrator waiting for a gap: A's move of X to B was superseded (B → C) and C took over, so the hub
    told A; A kept protecting X, X came back to A and A reported her moving to B again. That earlier word must
    not let A let go now, while B does not hold."""
    x = individual_number()
    a, b = world.nodes[A].app, world.nodes[B].app
    _asked(world, x)
    b.record_move(Actor(B, "req"), x, to_agency=C, moved_on=date(2026, 5, 1))
    world.settle()
    set_flag(world.nodes[C], C, x, ND)
    world.settle()
    world.nodes[C].app.record_move(Actor(C, "req"), x, to_agency=A, moved_on=date(2026, 7, 1))  # back to A
    world.settle()
    assert a.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 8, 1)) is not None
    world.settle()
    assert [h["flags_to_take_over"] for h in b.handovers_for(B)] == [[ND]]
    with pytest.raises(StateConflict) as refused:
        _release(world, A, x)
    assert refused.value.code == Code.HANDOVER_PENDING
    assert _parked(world) == []


def test_the_next_municipality_not_yet_filing_x_is_asked_when_it_does(world: HubNodes) -> None:
    """The perpetrator waiting for a gap: X moves on from B to C before C has filed her. B's request is
    withdrawn at once, and C is asked when X turns up at its counter — the withdrawal sent to B must not pass
    for C's handover having been delivered."""
    x = individual_number()
    b, c = world.nodes[B].app, world.nodes[C].app
    set_flag(world.nodes[A], A, x, ND)
    world.bridges[B].file_person(x)
    world.settle()
    world.nodes[A].app.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1))
    world.settle()
    assert len(b.handovers_for(B)) == 1
    assert b.record_move(Actor(B, "req"), x, to_agency=C, moved_on=date(2026, 5, 1)) is not None
    world.settle()
    assert b.handovers_for(B) == [] and c.handovers_for(C) == []  # C has not filed X: nothing to address yet
    world.bridges[C].file_person(x)  # X at C's counter (転入)
    world.settle()
    assert [h["flags_to_take_over"] for h in c.handovers_for(C)] == [[ND]]
    assert _parked(world) == []
