"""Who may link a person's numbers (issue 21): only their residence municipality, with four eyes.

Linking a stranger's number onto a victim's gives the stranger "self" access to the victim's portal records
(issue 18). Since issue 21 the ledger knows where a protected person lives (their recorded moves), so the
number change is left to the one municipality that makes it in life; anyone else's link is refused at their own
node and never applied at a peer: held there (``held_residence``) until a move makes the linker the residence —
the move may only be late — and parked ``not_residence`` once the hold is over.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.parked import parked
from consumers.pending import RESIDENCE_HOLD
from ledger.app import Actor
from ledger.errors import Code, PermissionDenied
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import SC, A, B, C, NodeFactory
from tests.support.links import link
from tests.support.pending import pending_parking
from tests.support.trust import agency_pair, trust_everyone

MOVED = date(2026, 12, 1)


def protect(node: Node, who: str, agency: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), who, ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def test_only_the_municipality_the_person_moved_to_links_their_numbers(node: Node, person: Any) -> None:
    """Threat: an insider at the old municipality (or any other) joining a stranger's number onto a protected
    person's after they moved away: refused with ``not_residence``; the municipality they moved to links, with
    four eyes as before."""
    x, new_number = person(), person()
    protect(node, x, B)
    node.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    with pytest.raises(PermissionDenied) as refused:
        node.app.request_link(Actor(B, "req"), x, new_number, "number-change notice")
    assert refused.value.code == Code.NOT_RESIDENCE
    assert node.state.linked(node.app.subject(x)) is None
    old, new = link(node.app, C, x, new_number)
    assert node.state.linked(new) == (old, new)


def test_a_link_requested_before_the_move_is_not_approved_after_it(node: Node, person: Any) -> None:
    """Threat: an insider racing a move — a request made while X still lived at B is checked again when
    approved: once the move to C is recorded, B's approval is refused and nothing links."""
    x, stranger = person(), person()
    protect(node, x, B)
    rid = node.app.request_link(Actor(B, "req"), x, stranger, "number-change notice")
    node.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    with pytest.raises(PermissionDenied) as refused:
        node.app.approve_link(Actor(B, "apr"), rid)
    assert refused.value.code == Code.NOT_RESIDENCE
    assert node.state.linked(node.app.subject(stranger)) is None


def test_a_protection_body_never_links_numbers(node: Node, person: Any) -> None:
    """Threat: a peer agency of another kind (a support centre) linking numbers, which only a municipality
    does in life — even with no residence recorded."""
    with pytest.raises(PermissionDenied) as refused:
        node.app.request_link(Actor(SC, "req"), person(), person(), "notice")
    assert refused.value.code == Code.NOT_RESIDENCE


def test_a_peers_link_for_someone_living_elsewhere_is_held_then_parked(
    make_node: NodeFactory, tmp_path: Path, person: Any
) -> None:
    """Threat: a peer agency whose node skipped the check (or did not know of the move yet) linking a stranger's
    number — the perpetrator's — onto a victim who lives elsewhere: node A knows X moved to A, so B's link is held
    (``held_residence``: the move that would make B the residence may only be late), nothing applied, the reason
    naming no pseudonym; once ``RESIDENCE_HOLD`` is over with no such move it is parked ``not_residence``, the
    reason telling the operator to replay it if the move turns up; without a pending store it is parked at once."""
    a, b = agency_pair(make_node, tmp_path)
    x, stranger = person(), person()
    protect(a, x, A)
    a.app.record_move(Actor(A, "req"), x, to_agency=A, from_agency=B, moved_on=MOVED)
    start = b.app.max_position()
    link(b.app, B, x, stranger)  # B's node knows no move: its own check passes
    (raw,) = sent(b, start)
    size = a.app.max_position()
    assert ingest(a.app, raw).code == Code.NOT_RESIDENCE, "without a pending store: parked at once"
    assert ingest(a.app, raw).kind == "parked"
    pending = pending_parking(a)
    outcome = ingest(a.app, raw, pending)
    assert outcome.kind == "held_residence" and outcome.code == Code.NOT_RESIDENCE, outcome
    assert a.app.subject(x) not in outcome.reason and a.app.subject(stranger) not in outcome.reason
    assert ingest_many(a.app, [raw], pending) == [outcome], "a redelivery is held again, the same way"
    pending._swept = float("-inf")  # (the sweep runs at most once a minute)
    assert ingest_many(a.app, [], pending) == [], "a sweep within the hold leaves it waiting"
    assert len(pending.waiting()) == 1 and parked(a) == []
    assert a.app.max_position() == size
    assert a.state.linked(a.app.subject(stranger)) is None
    real = a.app.clock
    a.app.clock = lambda: real() + RESIDENCE_HOLD + timedelta(minutes=1)
    try:
        pending._swept = float("-inf")
        ingest_many(a.app, [], pending)
    finally:
        a.app.clock = real
    assert pending.waiting() == []
    (row,) = parked(a)
    assert row["code"] == Code.NOT_RESIDENCE and "no move recorded within" in row["reason"], row
    assert "flagledger consumers replay" in row["reason"] and a.app.subject(x) not in row["reason"]
    assert a.app.max_position() == size
    assert a.state.linked(a.app.subject(stranger)) is None


@pytest.mark.parametrize("via", ["ingest", "ingest_many"])
def test_a_link_held_for_a_move_in_flight_applies_when_the_move_arrives(
    make_node: NodeFactory, tmp_path: Path, person: Any, via: str
) -> None:
    """Threat: a peer agency's genuine number change lost to message order (nodes diverging, the victim's new
    number unprotected on one node). X moved A→C, then C→B (recorded at C, the old end); B, which has received no
    move, links X's numbers. Node R (A) has the A→C move but not yet C→B when B's link arrives: held, nothing
    applied — the perpetrator's stranger link would look just the same — then the C→B move arrives and the link
    applies, with no operator, and the pending table is empty."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    r, c, d = (
        make_node((AgencySpec(code, f"{code}市", "municipality"),), name=name, pseudonym_key_file=key)
        for code, name in ((A, "r"), (C, "c"), (B, "d"))
    )
    trust_everyone([r, c, d])
    x, new_number = person(), person()
    protect(c, x, C)
    c.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=A, moved_on=MOVED - timedelta(days=30))
    pending = pending_parking(r)
    assert {o.kind for o in deliver(r, sent(c), pending, via)} == {"applied"}
    earlier = r.app.latest_move(r.app.subject(x))
    assert earlier is not None and earlier.to_agency == C
    start = c.app.max_position()
    c.app.record_move(Actor(C, "req"), x, to_agency=B, moved_on=MOVED)  # (recorded at C: D's node never hears)
    (move,) = sent(c, start)
    old, new = link(d.app, B, x, new_number)  # B's node knows no move: any municipality may link
    size = r.app.max_position()
    held = deliver(r, sent(d), pending, via)[-1]
    assert held.kind == "held_residence", held
    assert r.app.max_position() == size + len(sent(d)) - 1, "B's other events apply; its link does not"
    assert r.state.linked(new) is None and len(pending.waiting()) == 1
    (moved,) = deliver(r, [move], pending, via)
    assert moved == Outcome("applied", applied=2), "the move, then the link it makes B's to make"
    assert r.state.linked(new) == (old, new)
    assert pending.waiting() == [] and parked(r) == []


def test_a_held_link_stays_held_when_an_unrelated_move_arrives(
    make_node: NodeFactory, tmp_path: Path, person: Any
) -> None:
    """Threat: the perpetrator's stranger link for a victim who lives elsewhere, by a peer agency, slipped in on
    another person's move: X lives in A (recorded at A); B links a stranger's number onto X's and is held at A;
    a move of someone else, Z, to B then arrives — B's link is decided again and stays held, never applied."""
    a, b = agency_pair(make_node, tmp_path)
    x, stranger, z = person(), person(), person()
    protect(a, x, A)
    a.app.record_move(Actor(A, "req"), x, to_agency=A, from_agency=B, moved_on=MOVED)
    pending = pending_parking(a)
    deliver(a, sent(b), pending, "ingest")
    start = b.app.max_position()
    link(b.app, B, x, stranger)
    (raw,) = sent(b, start)
    assert ingest(a.app, raw, pending).kind == "held_residence"
    start = b.app.max_position()
    protect(b, z, B)
    b.app.record_move(Actor(B, "req"), z, to_agency=B, from_agency=C, moved_on=MOVED)
    size = a.app.max_position()
    outcomes = deliver(a, sent(b, start), pending, "ingest_many")
    assert [o.kind for o in outcomes] == ["applied"] * len(outcomes) and sum(o.applied for o in outcomes) == len(
        outcomes
    ), "Z's events apply, and nothing with them"
    assert a.app.max_position() == size + len(outcomes)
    assert a.state.linked(a.app.subject(stranger)) is None and a.state.linked(a.app.subject(x)) is None
    assert len(pending.waiting()) == 1 and parked(a) == []


def sent(node: Node, start: int = 0) -> list[bytes]:
    """What ``node`` publishes to its peers, from position ``start``."""
    return [raw for _, _, raw in publishable(node.app, start)]


def deliver(node: Node, raws: list[bytes], pending: PendingStore, via: str) -> list[Outcome]:
    """``raws`` ingested at ``node`` one by one, or as one poll of the consumer (``ingest_many``)."""
    if via == "ingest_many":
        return ingest_many(node.app, raws, pending)
    return [ingest(node.app, raw, pending) for raw in raws]
