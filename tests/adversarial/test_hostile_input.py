"""Hostile input: arbitrary bytes and mutated valid envelopes never crash the decoder or change state.

``Envelope.from_bytes``, ``SignedMapper.open`` (at-rest cipher), ``verify`` and ``decode`` may only raise
flagledger's own errors (``FlagLedgerError`` subclasses); a mutated envelope never verifies; nothing is
written. The consumer handler (consumers/ingest.py) is fuzzed in test_hostile_ingest.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.app import Actor
from ledger.errors import FlagLedgerError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node, init_node
from tests.adversarial.threat import AGENCIES, ND, A, B, prepare_node
from tests.support.people import individual_number

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = init_node(tmp_path_factory.mktemp("fuzz") / "node", AGENCIES[:2])
    prepare_node(n)
    x = individual_number()
    rid = n.app.request_flags(Actor(B, "req"), x, [ND])
    n.app.approve_request(Actor(B, "apr"), rid)
    n.app.approve_request(Actor(B, "apr2"), rid)
    n.app.execute_request(Actor(B, "op"), rid)
    n.app.request_provision(Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    yield n
    n.close()


def valid_envelopes(node: Node) -> list[bytes]:
    return [env.to_bytes() for _, _, env in node.app.envelopes()]


def pipeline(node: Node, raw: bytes, encrypted: bool) -> str:
    """What any reader does with bytes from outside: open, verify, decode. Returns how far it got."""
    mapper = node.app.signed_mapper
    env = mapper.open(mapper.protect(raw)) if encrypted else Envelope.from_bytes(raw)
    mapper.verify(env)
    mapper.decode(env)
    return "accepted"


def state(node: Node) -> tuple[int, dict[str, int]]:
    node.projector.catch_up()
    return node.app.max_position(), dict(node.projector.positions())


def only_our_errors(node: Node, raw: bytes, encrypted: bool = False) -> str:
    before = state(node)
    try:
        outcome = pipeline(node, raw, encrypted)
    except FlagLedgerError as exc:
        outcome = exc.code
    node.projector.catch_up()
    assert state(node) == before, "hostile input changed the node's state"
    return outcome


@FUZZ
@given(raw=st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_with_our_errors(node: Node, raw: bytes) -> None:
    assert only_our_errors(node, raw) != "accepted"
    assert only_our_errors(node, b"FLE1" + raw) != "accepted"


@FUZZ
@given(raw=st.binary(max_size=400))
def test_arbitrary_ciphertexts_are_refused_with_our_errors(node: Node, raw: bytes) -> None:
    before = state(node)
    with pytest.raises(FlagLedgerError):
        node.app.signed_mapper.open(raw)
    assert state(node) == before


@FUZZ
@given(data=st.data())
def test_mutated_valid_envelopes_never_verify(node: Node, data: st.DataObject) -> None:
    envelopes = valid_envelopes(node)
    raw = bytearray(data.draw(st.sampled_from(envelopes)))
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    else:  # another event's signature or header bytes in this one
        other = data.draw(st.sampled_from(envelopes))
        i = data.draw(st.integers(0, min(len(raw), len(other)) - 1))
        raw[i:] = other[i:]
    mutated = bytes(raw)
    if mutated in envelopes:
        return  # the splice reproduced a valid envelope
    assert only_our_errors(node, mutated) != "accepted"
    assert only_our_errors(node, mutated, encrypted=True) != "accepted"


def test_valid_envelopes_pass_the_same_pipeline(node: Node) -> None:
    """The harness is honest: unmodified envelopes are accepted."""
    assert {only_our_errors(node, raw) for raw in valid_envelopes(node)} == {"accepted"}


@FUZZ
@given(data=st.data())
def test_decoding_a_parsed_but_unverified_envelope_raises_only_our_errors(node: Node, data: st.DataObject) -> None:
    """decode() alone on forged headers (bad topic, stream, payload) — as a careless caller might use it."""
    import json

    from ledger.log.header import Header

    env = Envelope.from_bytes(data.draw(st.sampled_from(valid_envelopes(node))))
    header = json.loads(env.header_bytes)
    header["topic"] = data.draw(
        st.sampled_from(
            ["os:system", "nope", "ledger.domain.flags:Nope.Event", "ledger.log.envelope:Envelope", header["topic"]]
        )
    )
    header["stream"] = data.draw(st.sampled_from(["not-a-uuid", header["stream"]]))
    forged = Envelope(
        Header.from_bytes(json.dumps(header).encode()).to_bytes(),
        data.draw(st.sampled_from([env.payload, b"{", b"[]", b"\xff"])),
        env.seal,
    )
    with contextlib.suppress(FlagLedgerError):
        node.app.signed_mapper.decode(forged)
