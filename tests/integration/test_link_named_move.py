"""A number change names the move it was judged by, and every peer judges it as of that move (issue 21).

The link's signed date is its signer's clock: a peer that judged by it let a backdated link past a move made
since, and parked a genuine link followed the same day by two moves it had learnt of first. Now the linking node
names (signed, in the link) the latest move of the person it knew; a peer holds the link until it has that
move, judges the residence as of it, and refuses a link naming an older move than one the linker's own node had
signed before it (its log order, no clock). The receiving node runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.parked import parked
from consumers.pending import RESIDENCE_HOLD
from ledger import clock
from ledger.app import Actor
from ledger.domain.identity import PseudonymLink
from ledger.log.envelope import Envelope, seal_batch
from ledger.log.header import Header
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B, C, NodeFactory
from tests.support.links import link
from tests.support.pending import pending_parking
from tests.support.trust import trust_everyone

EARLIER = date(2026, 11, 1)


def nodes(make_node: NodeFactory, tmp_path: Path, backend: str | None) -> tuple[Node, Node, Node]:
    """A's node (the receiving peer, on ``backend``), B's and C's (SQLite), sharing one pseudonym secret."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    made = tuple(
        make_node((AgencySpec(code, f"{code}市", "municipality"),), name=name, pseudonym_key_file=key, database_url=url)
        for code, name, url in ((A, "a", backend), (B, "b", None), (C, "c", None))
    )
    trust_everyone(list(made))
    return made  # type: ignore[return-value]


def protect(node: Node, who: str, agency: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), who, ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def sent(node: Node, start: int = 0) -> list[bytes]:
    return [raw for _, _, raw in publishable(node.app, start)]


def deliver(node: Node, raws: list[bytes], pending: PendingStore, via: str = "ingest_many") -> list[Outcome]:
    if via == "ingest_many":
        return ingest_many(node.app, raws, pending)
    return [ingest(node.app, raw, pending) for raw in raws]


def forged_link(node: Node, old: str, new: str, residence_move: str | None) -> bytes:
    """B's node skipping its own residence check (a peer agency's modified node): B links ``old`` → ``new``,
    naming ``residence_move``; the published link."""
    app, start = node.app, node.app.max_position()
    o, n = app.subject(old), app.subject(new)
    forged = PseudonymLink(id=app.ids.link(B, o), agency=B, old=o, new=n, by="apr", residence_move=residence_move)
    app.save_as(B, forged)
    (raw,) = sent(node, start)
    return raw


def as_before_named_moves(node: Node, raw: bytes) -> bytes:
    """``raw`` re-signed by its node, at the same place in its log, as a link from before links named their move
    (class_version 1, no ``residence_move``)."""
    env = Envelope.from_bytes(raw)
    state = json.loads(env.payload)
    del state["class_version"], state["residence_move"]
    payload = json.dumps(state, separators=(",", ":")).encode()
    h = env.header
    header = Header(
        event_id=h.event_id, origin=h.origin, key_id=h.key_id, stream=h.stream, version=h.version, prev=h.prev,
        topic=h.topic, time=h.time, digest=hashlib.sha256(payload).hexdigest(),
    ).to_bytes()  # fmt: skip
    signer = node.app.signers[h.origin]
    sealed = seal_batch([header], [payload], signer.key_id, signer.sign, env.seal.log_size, env.seal.log_root)
    return sealed[0].to_bytes()


@pytest.fixture
def world(make_node: NodeFactory, tmp_path: Path, backend: str | None) -> tuple[Node, Node, Node]:
    return nodes(make_node, tmp_path, backend)


def test_a_backdated_link_past_a_move_its_node_recorded_is_parked_at_every_peer(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: a peer agency (B, its node modified or its clock wrong) linking the perpetrator's number onto X's
    after X moved away: X moved to B, then B recorded X's move on to C (転出 at B), dated after the link's own
    date as a backdated link would be. Whether B's link names the older move that made B the residence, the
    move away, or no move, A and C park it at once (``not_residence``), nothing applied; stripped of its named
    move (a link in the old format) it is still never applied: held, as a move B's node signed counts."""
    a, b, c = world
    x = person()
    protect(b, x, B)
    b.app.record_move(Actor(B, "req"), x, to_agency=B, from_agency=A, moved_on=EARLIER)
    made_b = b.app.latest_move(b.app.subject(x))
    tomorrow = clock.now().date() + timedelta(days=1)  # the link is dated before the move: backdated
    b.app.record_move(Actor(B, "req"), x, to_agency=C, from_agency=B, moved_on=tomorrow)
    moved_away = b.app.latest_move(b.app.subject(x))
    assert made_b is not None and moved_away is not None and moved_away.to_agency == C
    history = sent(b)
    peers = [(peer, pending_parking(peer)) for peer in (a, c)]
    for peer, pending in peers:
        assert {o.kind for o in deliver(peer, history, pending)} == {"applied"}
    for named in (str(made_b.id), str(moved_away.id), ""):
        stranger = person()  # (one link stream per old number: a stranger's number each time, onto X's)
        raw = forged_link(b, stranger, x, named)
        for peer, pending in peers:
            size = peer.app.max_position()
            outcome = ingest(peer.app, raw, pending)
            assert outcome.kind == "parked" and outcome.code == "not_residence", (named, outcome)
            assert peer.app.max_position() == size and peer.state.linked(peer.app.subject(stranger)) is None
            assert peer.app.subject(x) not in outcome.reason and peer.app.subject(stranger) not in outcome.reason
    stripped = as_before_named_moves(b, forged_link(b, stranger := person(), x, None))
    for peer, pending in peers:
        size = peer.app.max_position()
        outcome = ingest(peer.app, stripped, pending)
        assert outcome.kind == "held_residence" and outcome.code == "not_residence", outcome
        assert peer.app.max_position() == size and peer.state.linked(peer.app.subject(stranger)) is None


def test_a_link_followed_the_same_day_by_two_moves_applies_at_a_node_that_learnt_the_moves_first(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: a peer agency's genuine number change lost to message order (the victim's new number unprotected
    on one node). X lives in B (moved there earlier); B links X's numbers; the same day X moves B → C (recorded
    at C) and C → A (recorded at A). A learnt of both moves before B's link: judged as of the move B named, the
    link applies at once — nothing held, nothing parked — at A and at C alike."""
    a, b, c = world
    x, new_number = person(), person()
    protect(b, x, B)
    b.app.record_move(Actor(B, "req"), x, to_agency=B, from_agency=A, moved_on=EARLIER)
    pending = {A: pending_parking(a), C: pending_parking(c)}
    for peer, code in ((a, A), (c, C)):
        assert {o.kind for o in deliver(peer, sent(b), pending[code])} == {"applied"}
    start = b.app.max_position()
    old, new = link(b.app, B, x, new_number)
    (linked,) = sent(b, start)
    today = clock.now().date()
    c.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=today)
    to_c = sent(c, c.app.max_position() - 1)
    assert {o.kind for o in deliver(a, to_c, pending[A])} == {"applied"}
    start = a.app.max_position()
    a.app.record_move(Actor(A, "req"), x, to_agency=A, from_agency=C, moved_on=today)
    to_a = sent(a, start)
    assert {o.kind for o in deliver(c, to_a, pending[C])} == {"applied"}
    latest = a.app.latest_move(a.app.subject(x))
    assert latest is not None and latest.to_agency == A, "A knows X lives in A now"
    for peer, code in ((a, A), (c, C)):
        assert deliver(peer, [linked], pending[code]) == [Outcome("applied", applied=1)]
        assert peer.state.linked(new) == (old, new)
        assert pending[code].waiting() == [] and parked(peer) == []


@pytest.mark.parametrize("via", ["ingest", "ingest_many"])
def test_a_link_naming_a_move_not_here_yet_is_held_then_applied_when_it_arrives(
    world: tuple[Node, Node, Node], person: Any, via: str
) -> None:
    """Threat: a peer agency's link applied on a guess — or a genuine one lost to message order. X moved to B,
    recorded at C (転出 at C); B's node received the move and links X's numbers, naming it. A has not received
    the move (and knows no move of X at all, where a link naming none would apply): held, nothing applied; the
    move arrives and the link applies with it, no operator, the pending table empty."""
    a, b, c = world
    x, new_number = person(), person()
    protect(c, x, C)
    start = c.app.max_position()
    c.app.record_move(Actor(C, "req"), x, to_agency=B, from_agency=C, moved_on=EARLIER)
    to_b = sent(c, start)
    pending_b = pending_parking(b)
    assert {o.kind for o in deliver(b, sent(c), pending_b)} == {"applied"}
    start = b.app.max_position()
    old, new = link(b.app, B, x, new_number)
    (linked,) = sent(b, start)
    assert b.app.find(PseudonymLink, b.app.ids.link(B, old)).residence_move == str(  # type: ignore[union-attr]
        b.app.latest_move(old).id  # type: ignore[union-attr]
    ), "the link names the move its node judged by"
    pending = pending_parking(a)
    assert a.app.latest_move(a.app.subject(x)) is None
    size = a.app.max_position()
    (held,) = deliver(a, [linked], pending, via)
    assert held.kind == "held_residence" and held.code == "not_residence", held
    assert "names move" in held.reason and a.app.subject(x) not in held.reason
    assert a.app.max_position() == size and a.state.linked(new) is None and len(pending.waiting()) == 1
    earlier = [raw for raw in sent(c) if raw not in to_b]
    deliver(a, earlier, pending, via)
    assert a.state.linked(new) is None, "C's other events do not release it"
    moved = deliver(a, to_b, pending, via)
    assert moved[-1] == Outcome("applied", applied=2), "the move, then the link that names it"
    assert a.state.linked(new) == (old, new)
    assert pending.waiting() == [] and parked(a) == []


def test_a_link_naming_a_move_that_never_arrives_is_parked_after_the_hold(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: a peer agency naming a move nobody recorded (a made-up id) to have its link wait its way in: held
    while ``RESIDENCE_HOLD`` lasts, then parked ``not_residence``, never applied."""
    a, b, _ = world
    x, stranger = person(), person()
    raw = forged_link(b, stranger, x, "0b6b7c1e-8d5e-4f8a-9c1a-3e2f4d5a6b7c")
    pending = pending_parking(a)
    size = a.app.max_position()
    assert ingest(a.app, raw, pending).kind == "held_residence"
    real = a.app.clock
    a.app.clock = lambda: real() + RESIDENCE_HOLD + timedelta(minutes=1)
    try:
        pending._swept = float("-inf")  # (the sweep runs at most once a minute)
        ingest_many(a.app, [], pending)
    finally:
        a.app.clock = real
    assert pending.waiting() == []
    (row,) = parked(a)
    assert row["code"] == "not_residence" and a.app.subject(x) not in row["reason"], row
    assert a.app.max_position() == size and a.state.linked(a.app.subject(stranger)) is None


def test_a_genuine_link_from_before_named_moves_is_judged_by_its_date_as_before(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: a peer agency's genuine number change from an older release parked by this one (nodes diverging).
    X moved to B (recorded at C); B linked in the old format (no named move); A knows of a move of X dated after
    the link, recorded elsewhere: the link applies, as it did before."""
    a, b, c = world
    x, new_number = person(), person()
    protect(c, x, C)
    c.app.record_move(Actor(C, "req"), x, to_agency=B, from_agency=C, moved_on=EARLIER)
    deliver(b, sent(c), pending_parking(b))
    start = b.app.max_position()
    old, new = link(b.app, B, x, new_number)
    (linked,) = sent(b, start)
    start = c.app.max_position()
    c.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=clock.now().date() + timedelta(1))
    pending = pending_parking(a)
    assert {o.kind for o in deliver(a, sent(c), pending)} == {"applied"}
    assert deliver(a, [as_before_named_moves(b, linked)], pending) == [Outcome("applied", applied=1)]
    assert a.state.linked(new) == (old, new) and parked(a) == []
