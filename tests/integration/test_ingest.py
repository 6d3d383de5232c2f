"""Two agency nodes, no broker: B's published events reach A through the same ingest the consumer uses.

A flag set and approved at B makes A hold the next request about X; release at B lifts it at A.
Duplicates, reordering, gaps, forgeries and garbage never change A's ledger wrongly.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.support.approvals import approve_fully
from tests.support.trust import trust


@pytest.fixture
def pair(make_node, tmp_path: Path, backend: str | None) -> tuple[Node, Node]:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key, database_url=backend)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    trust(b, a)
    return a, b


def ship(src: Node, dst: Node, after: int = 0) -> tuple[int, list[Outcome]]:
    pending = PendingStore(dst.app, dst.engine)
    outcomes = []
    last = after
    for position, _, raw in publishable(src.app, after):
        outcomes.append(ingest(dst.app, raw, pending))
        last = position
    dst.projector.catch_up()
    return last, outcomes


def _protect(b: Node, x: str) -> None:
    rid = b.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)


def _ask_a(a: Node, x: str) -> str:
    return a.app.request_provision(
        Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).status


def test_a_flag_set_at_b_protects_at_a_and_release_at_b_lifts_it(pair, person) -> None:
    a, b = pair
    x = person()
    assert _ask_a(a, x) == "answered"
    _protect(b, x)
    pos, outcomes = ship(b, a)
    assert {o.kind for o in outcomes} == {"applied"}
    assert _ask_a(a, x) == "in_progress"
    release = b.app.request_flags(
        Actor(B, "req"), x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"], kind="release", explanation="保護解除を説明済み"
    )
    approve_fully(b.app, B, release)  # the last holder anywhere: two approvals (docs/year.md)
    b.app.execute_request(Actor(B, "op"), release)
    ship(b, a, pos)
    assert _ask_a(a, x) == "answered"
    assert verify_log(a.app).ok
    # data minimisation: B's intake, approvals and staff never reached A
    topics = {env.header.topic for _, _, env in a.app.envelopes() if env.header.origin == B}
    assert not any(t.split(":")[1].split(".")[0] in {"FlagRequest", "Staff", "ProtectionCase"} for t in topics)


def test_duplicates_are_skipped_and_out_of_order_events_wait_for_the_gap(pair, person) -> None:
    a, b = pair
    x = person()
    _protect(b, x)
    batch = [raw for _, _, raw in publishable(b.app)]
    before = a.app.max_position()
    late = [r for r in batch if "Protection.Opened" in Envelope.from_bytes(r).header.topic]
    rest = [r for r in batch if r not in late]
    pending = PendingStore(a.app, a.engine)
    kinds = [ingest(a.app, raw, pending).kind for raw in rest]
    assert "held_gap" in kinds  # FlagsSet (v2) arrived before Opened (v1)
    assert a.app.flag_state is not None and a.app.flag_state.flags_for(a.app.subject(x)) == {}
    assert ingest(a.app, late[0], pending).applied == 2  # v1, then the held v2 follows
    assert [ingest(a.app, raw, pending).kind for raw in batch] == ["duplicate"] * len(batch)
    assert a.app.max_position() == before + len(batch)
    assert set(a.app.flag_state.flags_for(a.app.subject(x))) == {"NO_AUTO_RESPONSE", "NON_DISCLOSURE"}
    assert pending.waiting() == []


def test_forged_tampered_and_garbage_messages_are_parked_with_a_reason(pair, person) -> None:
    a, b = pair
    x = person()
    _protect(b, x)
    raws = [raw for _, _, raw in publishable(b.app)]
    before = a.app.max_position()
    tampered = raws[-1].replace(b"NON_DISCLOSURE", b"NON_DISCLOSURF")
    flipped_sig = raws[-1][:-1] + bytes([raws[-1][-1] ^ 1])
    for bad, code in ((b"\x00garbage", "malformed"), (tampered, "bad_signature"), (flipped_sig, "bad_signature")):
        outcome = ingest(a.app, bad)
        assert outcome.kind == "parked" and outcome.code == code and outcome.reason
    assert a.app.max_position() == before


def test_an_unknown_agency_is_parked_until_an_administrator_trusts_it(make_node, tmp_path: Path, person) -> None:
    key = tmp_path / "k"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    first = next(raw for _, _, raw in publishable(b.app))
    outcome = ingest(a.app, first)
    assert outcome.kind == "parked" and outcome.code == "unknown_agency"


def test_an_event_from_a_newer_release_is_parked_until_this_node_is_upgraded(pair, person) -> None:
    """B runs a newer flagledger whose event class is at v99: A must not decode it with its older class
    (fields would be dropped silently) but park it, saying what to do, and change nothing."""
    import hashlib

    from ledger.log.envelope import seal_batch
    from ledger.log.header import Header

    a, b = pair
    _protect(b, person())
    raw = next(
        raw
        for _, _, raw in publishable(b.app)
        if ":Protection." in (h := Envelope.from_bytes(raw).header).topic and h.version == 1
    )
    env = Envelope.from_bytes(raw)
    assert env.payload.startswith(b"{")
    payload = b'{"class_version":99,' + env.payload[1:]
    h = env.header
    header = Header(
        event_id=h.event_id,
        origin=h.origin,
        key_id=h.key_id,
        stream=h.stream,
        version=h.version,
        prev=h.prev,
        topic=h.topic,
        time=h.time,
        digest=hashlib.sha256(payload).hexdigest(),
    ).to_bytes()
    signer = b.app.signers[B]
    newer = seal_batch([header], [payload], signer.key_id, signer.sign)[0].to_bytes()
    before = a.app.max_position()
    outcome = ingest(a.app, newer)
    assert outcome.kind == "parked" and outcome.code == "newer_schema"
    assert "upgrade this node" in outcome.reason
    assert a.app.max_position() == before
    assert ingest(a.app, raw).kind == "applied", "the same event at the version A knows still applies"


@pytest.mark.parametrize("spelling", [str.upper, lambda s: s.replace("-", ""), lambda s: "{" + s + "}"])
def test_a_signed_event_naming_its_stream_in_another_spelling_is_parked_not_stored(pair, person, spelling) -> None:
    """UUID() reads many spellings of one stream id; the log reads rows back as str(UUID). An event spelled
    otherwise, correctly signed, would be stored and then fail every audit as a broken chain: park it."""
    import hashlib

    from consumers.ingest import ingest_many
    from ledger.log.envelope import seal_batch
    from ledger.log.header import Header

    a, b = pair
    _protect(b, person())
    raw = next(raw for _, _, raw in publishable(b.app) if Envelope.from_bytes(raw).header.version == 1)
    h = Envelope.from_bytes(raw).header
    payload = Envelope.from_bytes(raw).payload
    header = Header(
        event_id=h.event_id,
        origin=h.origin,
        key_id=h.key_id,
        stream=spelling(h.stream),
        version=h.version,
        prev=h.prev,
        topic=h.topic,
        time=h.time,
        digest=hashlib.sha256(payload).hexdigest(),
    ).to_bytes()
    signer = b.app.signers[B]
    odd = seal_batch([header], [payload], signer.key_id, signer.sign)[0].to_bytes()
    before = a.app.max_position()
    for outcome in (ingest(a.app, odd), *ingest_many(a.app, [odd])):
        assert (outcome.kind, outcome.code) == ("parked", "schema"), outcome
        assert "canonical form" in outcome.reason
    assert a.app.max_position() == before
    assert ingest(a.app, raw).kind == "applied", "the same event spelled canonically applies"
    assert verify_log(a.app).ok
