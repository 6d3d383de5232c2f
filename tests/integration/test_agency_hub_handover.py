"""Handovers through the hub (issue 19 with issue 21's 転出/転入): X, protected at A, moves A → B → C; each
municipality knows X only by its own code, the hub maps the codes and routes, and says nothing of a holder to a
non-holder. Three nodes in hub mode and an in-process hub (tests/support/hub_nodes.py), each on its own
database (SQLite, or throw-away PostgreSQL databases).

Threats, per test: a peer agency forging another's handover (to learn whether anyone protects X, or to be handed
X's protection itself); an insider at a non-holder (what reaches its node); the broker operator (what the
records on the broker show).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import Code, StateConflict
from ledger.hub.tables import hub_moves, hub_parked
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.moves import MoveMessage
from ledger.linkage.transport import Topics
from ledger.runtime.handovers import move_id
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_applied, linkage_handovers, linkage_moves_refused
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_mode import _all_rows, _count, _world, names
from tests.support.approvals import approve_fully
from tests.support.hub_nodes import HubNodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

ND = "NON_DISCLOSURE"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path)


def _release(w: HubNodes, agency: str, number: str) -> None:
    node = w.nodes[agency]
    rid = node.app.request_flags(Actor(agency, "req"), number, [ND], kind="release", explanation="told at the counter")
    approve_fully(node.app, agency, rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def _parked(w: HubNodes) -> list[str]:
    with w.hub.store.engine.connect() as conn:
        return [str(c) for c in conn.execute(select(hub_parked.c.code)).scalars()]


def _events(w: HubNodes, agency: str) -> list[str]:
    """Every event of the node's log, decoded, as text."""
    app = w.nodes[agency].app
    return [str(app.signed_mapper.decode(env).__dict__) for _, _, env in app.envelopes()]


def _moves(w: HubNodes) -> int:
    with w.hub.store.engine.connect() as conn:
        return len(conn.execute(select(hub_moves.c.seq)).all())


def test_x_moves_a_to_b_to_c_and_each_takes_over_through_the_hub(world: HubNodes) -> None:
    """Insider at a non-holder; perpetrator waiting for a gap in protection: A protects X and reports X's move
    to B; B, which has not filed X yet, is asked to take over when it files X — under its own code, naming
    neither A nor any holder; C, registered for X but no party to the move, hears nothing. A may not release
    until B holds; once B holds the hub tells A, and A releases without a decision. Then X moves on from B to
    C, C is asked at once (it had filed X), and B is told when C holds."""
    x = individual_number()
    a, b, c = (world.nodes[k].app for k in (A, B, C))
    set_flag(world.nodes[A], A, x, ND)
    world.bridges[C].file_person(x)  # C knows X already (say, an old tax record): registered at the hub
    world.settle()
    heard_by_c = _count(world, C, linkage_applied)

    assert a.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1)) is not None
    world.settle()
    assert _moves(world) == 1 and b.handovers_for(B) == []  # B never filed X: nothing to address it to yet
    with pytest.raises(StateConflict) as refused:  # the gap: B does not hold, A may not just let go
        _release(world, A, x)
    assert refused.value.code == Code.HANDOVER_PENDING

    world.bridges[B].file_person(x)  # X at B's counter (転入)
    world.settle()
    (asked,) = b.handovers_for(B)
    assert asked["subject"] == b.subject(x) and asked["flags_to_take_over"] == [ND] and asked["source"] == "hub"
    assert asked["moved_on"] == "2026-04-01"
    # B is told what to take over and nothing of who protects X nor where X came from
    assert not names(json.dumps(asked), A) and not names(_all_rows(world, B), A)
    assert not any(names(e, A) for e in _events(world, B))
    assert any(names(e, B) for e in _events(world, A))  # the search can find an agency: A named B itself
    # C, a non-holder that knows X, received no message at all about the move
    assert _count(world, C, linkage_applied) == heard_by_c and _count(world, C, linkage_handovers) == 0

    set_flag(world.nodes[B], B, x, ND)  # B takes over with its own four eyes
    world.settle()
    assert b.handovers_for(B) == []
    assert sorted(a.holders_anywhere(a.subject(x))[ND]) == sorted([A, B])
    _release(world, A, x)  # no decision naming a risk: the hub said B holds
    world.settle()
    assert A not in a.holders_anywhere(a.subject(x)).get(ND, [])

    # X moves on, B → C: C filed X long ago, so it is asked at once
    a_rows = _count(world, A, linkage_handovers)
    assert b.record_move(Actor(B, "req"), x, to_agency=C, moved_on=date(2026, 9, 1)) is not None
    world.settle()
    (asked_c,) = c.handovers_for(C)
    assert asked_c["subject"] == c.subject(x) and asked_c["flags_to_take_over"] == [ND]
    assert not names(_all_rows(world, C), A) and not names(_all_rows(world, C), B)
    assert not any(names(e, A) or names(e, B) for e in _events(world, C))
    with pytest.raises(StateConflict) as refused:
        _release(world, B, x)
    assert refused.value.code == Code.HANDOVER_PENDING
    set_flag(world.nodes[C], C, x, ND)
    world.settle()
    assert sorted(b.holders_anywhere(b.subject(x))[ND]) == sorted([B, C])
    _release(world, B, x)
    assert _count(world, A, linkage_handovers) == a_rows  # A, no longer a party, hears nothing of the second move
    assert _parked(world) == []


def test_a_peer_cannot_forge_a_handover(world: HubNodes) -> None:
    """Peer agency forging another's handover, with its own valid keys: C, which neither protects X nor is
    where X lives, reports that X moved from A to C (to be handed X's protection, or to learn by trying that
    anyone protects X), and that X moved from A to B (a move it is no party to); A reports a move starting
    elsewhere than where X lives. Each is parked at the hub; nothing is filed, no one else is told (A hears its
    own ``not_residence``: test_a_refused_move_is_reported_back_to_its_sender). The refusal is the same whether
    or not anyone protects the person (C learns nothing from it)."""
    x, z = individual_number(), individual_number()
    set_flag(world.nodes[A], A, x, ND)
    world.bridges[C].file_person(x)
    world.bridges[C].file_person(z)  # Z: protected by nobody
    world.bridges[B].file_person(x)
    world.settle()
    c_code = world.bridges[C].end
    for code, to_agency, from_agency in (
        (code_of(world.nodes[C].app.subject(x)), C, A),
        (code_of(world.nodes[C].app.subject(x)), B, A),
        (code_of(world.nodes[C].app.subject(z)), C, A),
    ):
        c_code.send(MoveMessage(uuid.uuid4().hex, code, from_agency, to_agency, "2026-04-01"))
    world.settle()
    assert _parked(world) == [Code.WRONG_AGENCY] * 3
    assert _moves(world) == 0
    assert world.nodes[B].app.handovers_for(B) == [] and world.nodes[C].app.handovers_for(C) == []

    # A, the holder, moves X to B; then claims a move from C (not where X lives now): parked
    assert world.nodes[A].app.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1))
    world.settle()
    world.bridges[A].end.send(MoveMessage(uuid.uuid4().hex, code_of(world.nodes[A].app.subject(x)), C, A, "2026-05-01"))
    world.settle()
    assert _parked(world)[-1] == Code.NOT_RESIDENCE and _moves(world) == 1
    assert [h["flags_to_take_over"] for h in world.nodes[B].app.handovers_for(B)] == [[ND]]


def test_the_broker_sees_only_sealed_answer_sized_messages_of_a_handover(world: HubNodes) -> None:
    """Broker operator: a handover and its "handed over" travel as sealed messages of the answer bucket's
    size, like every routed query and consultation; no number, code, flag name or agency's name inside."""
    x = individual_number()
    set_flag(world.nodes[A], A, x, ND)
    world.bridges[B].file_person(x)
    world.settle()
    topics = Topics()
    before = {p: len(world.broker.topics.get(topics.inbox(p), [])) for p in (A, B, C)}
    world.nodes[A].app.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1))
    world.settle()
    set_flag(world.nodes[B], B, x, ND)
    world.settle()
    new = {p: world.broker.topics.get(topics.inbox(p), [])[before[p] :] for p in (A, B, C)}
    assert len(new[B]) >= 1 and len(new[A]) == 1 and new[C] == []
    sizes = {len(m) for m in new[A] + new[B]}
    assert len(sizes) == 1 and sizes.pop() > ANSWER_SIZE
    secrets = [x.encode(), ND.encode(), b"handover", b"handed_over"]
    secrets += [code_of(world.nodes[k].app.subject(x)).encode() for k in (A, B)]
    for message in new[A] + new[B] + world.broker.topics.get(topics.inbox("hub"), []):
        assert not any(s in message for s in secrets)


def test_a_refused_move_is_reported_back_to_its_sender(world: HubNodes) -> None:
    """Threat: the perpetrator, while A's staff believe a handover under way and nobody is asked. A protects X and
    reports her move to B; A's counter then records a second move of X from A to C (A's stale view: the hub last
    saw her move to B) — refused ``not_residence``. A is told once, sealed at an answer's size under its own code
    (no holder, not where she lives): its year queue lists the refused move (``moves_refused``: the move's id, X,
    the reason), the API's year queue too; C is asked nothing and hears nothing; a fresh bridge and a replay keep
    one row. Without the report A's queue shows nothing and the hub's parking is all there is."""
    x = individual_number()
    a = world.nodes[A]
    set_flag(a, A, x, ND)
    world.bridges[B].file_person(x)
    world.bridges[C].file_person(x)
    assert a.app.record_move(Actor(A, "req"), x, to_agency=B, moved_on=date(2026, 4, 1))
    world.settle()
    assert a.app.year_queue(Actor(A, "req"))["moves_refused"] == []
    topics = Topics()
    before = {p: len(world.broker.topics.get(topics.inbox(p), [])) for p in (A, C)}
    second = a.app.record_move(Actor(A, "req"), x, to_agency=C, moved_on=date(2026, 5, 1))
    assert second is not None
    world.settle()
    assert _parked(world)[-1] == Code.NOT_RESIDENCE and _moves(world) == 1
    new = {p: world.broker.topics.get(topics.inbox(p), [])[before[p] :] for p in (A, C)}
    assert len(new[A]) == 1 and new[C] == [] and len(new[A][0]) > ANSWER_SIZE
    assert world.nodes[C].app.handovers_for(C) == []
    refused = a.app.year_queue(Actor(A, "req"))["moves_refused"]
    assert [(r["move_id"], r["subject"], r["reason"]) for r in refused] == [
        (move_id(second), a.app.subject(x), Code.NOT_RESIDENCE)
    ]
    assert B not in json.dumps(refused) and C not in json.dumps(refused)
    world.bridge(A).pull(timeout_ms=20)
    world.settle()
    assert len(a.app.year_queue(Actor(A, "req"))["moves_refused"]) == 1
    with a.engine.connect() as conn:
        rows = conn.execute(select(linkage_moves_refused)).all()
    assert len(rows) == 1
