"""A peer's flag change that arrives before the roster event certifying the staff key that signed it is held
(``ingest_pending``, kind ``held_roster``) and applied as soon as that roster event arrives — no operator replay;
one whose key is never certified is parked as a forgery (``staff_signature``, incident ``forged_signature``)
once the wait is over (``consumers.pending.ROSTER_HOLD``); a bad signature is parked at once.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from consumers.ingest import Outcome, ingest, ingest_many
from consumers.outbox import publishable
from consumers.parked import parked
from consumers.pending import ROSTER_HOLD
from ledger.app import Actor
from ledger.app.incidents import incidents_of
from ledger.domain.staff_acts import APPROVED, EXECUTED, act_statement, note_digest
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node
from tests.conftest import B, C
from tests.integration.test_staff_signing import FLAGS, deliver, forge_execution, pair, shell_user_key
from tests.support.pending import pending_parking
from tests.support.people import individual_number
from tests.support.staff import enrol

__all__ = ["pair"]  # (the fixture: B's node and its peer C's)


def _topic(raw: bytes) -> str:
    return Envelope.from_bytes(raw).header.topic.rsplit(":", 1)[1]


def _flags_at(node: Node, raw: bytes) -> int:
    h = Envelope.from_bytes(raw).header
    head = node.app.signed_store.head(UUID(h.stream))
    return head[0] if head is not None else 0


def test_a_flag_change_ahead_of_its_roster_event_waits_for_it_and_then_applies(pair: tuple[Node, Node]) -> None:
    """Threat: none is let through — the peer agency's genuine protection must not be lost or need an operator
    because its roster event came late (held up by a gap, or parked while its key was being trusted): the
    flag change waits, nothing of it applies before a roster event certifies the key, then it applies alone."""
    b, c = pair
    deliver(b, c)
    start = b.app.max_position()
    enrol(b, Actor(B, "admin"), "req3", ["requester"])  # a new colleague: their key is certified in the roster
    rid = b.app.request_flags(Actor(B, "req3"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    raws = [raw for _, _, raw in publishable(b.app, start)]
    late = [r for r in raws if _topic(r).startswith("StaffRoster.")]
    # req3's requester role (certified at enrolment, roles at peers), then their key
    assert [_topic(r) for r in late] == ["StaffRoster.RoleCertified", "StaffRoster.KeyCertified"]
    pending = pending_parking(c)
    outcomes = {_topic(r): ingest(c.app, r, pending) for r in raws if r not in late}
    flags_set = next(r for r in raws if _topic(r) == "Protection.FlagsSet")
    held = outcomes["Protection.FlagsSet"]
    assert held.kind == "held_roster" and "held until" in held.reason and "roster certifies" in held.reason
    assert _flags_at(c, flags_set) == Envelope.from_bytes(flags_set).header.version - 1, "nothing applied yet"
    assert ingest(c.app, late[0], pending) == Outcome("applied", applied=1), "a role alone certifies no key"
    assert _flags_at(c, flags_set) == Envelope.from_bytes(flags_set).header.version - 1, "nothing applied yet"
    released = ingest(c.app, late[1], pending)
    assert released == Outcome("applied", applied=2), "the roster event, then the flag change it certifies"
    assert _flags_at(c, flags_set) == Envelope.from_bytes(flags_set).header.version
    assert pending.waiting() == [] and parked(c) == []


def test_a_roster_event_released_from_behind_a_gap_releases_the_flag_change_too(pair: tuple[Node, Node]) -> None:
    """Threat: none is let through — as above, when the certifying roster event itself waited behind a gap in
    the roster stream: filling the gap applies it, and the flag change it certifies follows at once."""
    b, c = pair
    deliver(b, c)
    start = b.app.max_position()
    enrol(b, Actor(B, "admin"), "req3", ["requester"])
    enrol(b, Actor(B, "admin"), "req4", ["requester"])
    rid = b.app.request_flags(Actor(B, "req4"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    raws = [raw for _, _, raw in publishable(b.app, start)]
    first, *rest = roster = [r for r in raws if _topic(r).startswith("StaffRoster.")]
    assert [_topic(r).rsplit(".", 1)[1] for r in roster] == ["RoleCertified", "KeyCertified"] * 2
    pending = pending_parking(c)
    kinds = {_topic(r): ingest(c.app, r, pending).kind for r in raws if r not in roster}
    assert kinds["Protection.FlagsSet"] == "held_roster"
    for r in rest:
        assert ingest(c.app, r, pending).kind == "held_gap", "req4's certificate waits for what came before it"
    assert ingest(c.app, first, pending) == Outcome("applied", applied=5)
    assert pending.waiting() == [] and parked(c) == []


def test_batched_ingest_holds_too_and_a_later_roster_batch_releases(pair: tuple[Node, Node]) -> None:
    """Threat: as above, through the Kafka consumer's batched path (``ingest_many``)."""
    b, c = pair
    deliver(b, c)
    start = b.app.max_position()
    enrol(b, Actor(B, "admin"), "req3", ["requester"])
    rid = b.app.request_flags(Actor(B, "req3"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    raws = [raw for _, _, raw in publishable(b.app, start)]
    late = [r for r in raws if _topic(r).startswith("StaffRoster.")]
    pending = pending_parking(c)
    first = ingest_many(c.app, [r for r in raws if r not in late], pending)
    assert [o.kind for o in first].count("held_roster") == 1 and "parked" not in [o.kind for o in first]
    assert ingest_many(c.app, late, pending) == [Outcome("applied", applied=1), Outcome("applied", applied=2)]
    assert pending.waiting() == []


def test_a_key_never_certified_is_parked_as_a_forgery_once_the_wait_is_over(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user on B's node signing an approval and an execution with a key of their own that no
    administrator certified: never applied at C; held no longer than the bound, then parked ``staff_signature``
    with a reason saying so, and the forged-signature incident is raised."""
    b, c = pair
    deliver(b, c)
    start = b.app.max_position()
    rid = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    mine = shell_user_key(B)
    digest = b.app.flag_request(rid).digest()
    acts = []
    for act, who in ((APPROVED, "apr"), (EXECUTED, "op")):
        signed = {"act": act, "staff": who, "note": note_digest("")}
        acts.append(signed | mine.sign(act_statement(B, act, str(rid), digest, who, note_digest(""))))
    forge_execution(b, rid, acts)
    pending = pending_parking(c)
    outcomes = {_topic(r): ingest(c.app, r, pending) for _, _, r in publishable(b.app, start)}
    assert outcomes["Protection.FlagsSet"].kind == "held_roster"
    assert ingest_many(c.app, [], pending) == [], "a sweep within the bound leaves it waiting"
    assert len(pending.waiting()) == 1 and parked(c) == []
    real = c.app.clock
    c.app.clock = lambda: real() + ROSTER_HOLD + timedelta(minutes=1)
    try:
        pending._swept = float("-inf")  # (the sweep runs at most once a minute)
        ingest_many(c.app, [], pending)
    finally:
        c.app.clock = real
    assert pending.waiting() == []
    (row,) = parked(c)
    assert row["code"] == "staff_signature" and "no roster event certified them within" in row["reason"]
    assert mine.key_id in row["reason"]
    assert "forged_signature" in [i.kind for i in incidents_of(c.app, C)]


def test_a_bad_signature_under_a_certified_key_is_parked_at_once(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user replaying apr's real signature from another request: the key is certified, so no
    roster event can make it right — parked at once, not held."""
    b, c = pair
    first = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "apr"), first)
    b.app.execute_request(Actor(B, "op"), first)
    deliver(b, c)
    start = b.app.max_position()
    genuine = {a["act"]: a for a in b.app.flag_request(first).acts}
    second = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    forge_execution(b, second, [genuine[APPROVED], genuine[EXECUTED]])
    outcomes = {_topic(r): ingest(c.app, r, pending_parking(c)) for _, _, r in publishable(b.app, start)}
    refused = outcomes["Protection.FlagsSet"]
    assert (refused.kind, refused.code) == ("parked", "staff_signature") and "does not verify" in refused.reason
