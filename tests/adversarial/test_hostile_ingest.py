"""Hostile input for the consumer handler: ``consumers.ingest`` with arbitrary bytes and mutated valid messages.

Whatever arrives on the topic, ingest never raises, never changes the node's state (log, held-back events,
projections, key registry) for an invalid message, and always answers ``parked`` with a reason and a code,
so the consumer loop parks it (dead-letter topic + parked table) instead of dropping it. Mutations are made
of messages A's node has already applied and of messages it has not seen yet (which would apply if accepted).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.log.header import Header
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.adversarial.threat import NAR, ND, A, B, prepare_node
from tests.support.links import link
from tests.support.people import individual_number
from tests.support.trust import trust

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@dataclass
class Pair:
    a: Node
    b: Node
    applied: list[bytes]  # B's messages A's node holds
    fresh: list[bytes]  # B's messages A's node has not seen: accepting a forgery of one would change state


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("ingest-fuzz")
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = init_node(root / "a", (AgencySpec(A, "A市", "municipality"),), pseudonym_key_file=key)
    b = init_node(root / "b", (AgencySpec(B, "B市", "municipality", approvals_required=2),), pseudonym_key_file=key)
    for n in (a, b):
        prepare_node(n)
    trust(a, b)
    trust(b, a)
    x, y = individual_number(), individual_number()
    first = [raw for _, _, raw in publishable(b.app)]
    for subject, flags in ((x, [NAR, ND]), (y, [ND])):
        rid = b.app.request_flags(Actor(B, "req"), subject, flags)
        b.app.approve_request(Actor(B, "apr"), rid)
        b.app.approve_request(Actor(B, "apr2"), rid)
        b.app.execute_request(Actor(B, "op"), rid)
    b.app.receive_query(A, B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    link(b.app, B, x, individual_number())
    pending = PendingStore(a.app, a.engine)
    for raw in first:
        assert ingest(a.app, raw, pending).kind == "applied"
    fresh = [raw for _, _, raw in publishable(b.app) if raw not in first]
    assert fresh, "the fixture must leave messages A's node has not applied"
    yield Pair(a, b, first, fresh)
    a.close()
    b.close()


def snapshot(node: Node) -> tuple[object, ...]:
    node.projector.catch_up()
    return (
        node.app.max_position(),
        tuple(node.projector.positions().items()),
        tuple(sorted(PendingStore(node.app, node.engine).waiting())),
        tuple(sorted(r.key_id for r in node.app.keyring.records())),
    )


def parked(pair: Pair, raw: bytes) -> Outcome:
    """Ingest at A's node (with the held-back store, as the consumer does); must park and change nothing."""
    before = snapshot(pair.a)
    outcome = ingest(pair.a.app, raw, PendingStore(pair.a.app, pair.a.engine))  # must not raise
    assert snapshot(pair.a) == before, f"an invalid message changed A's node ({outcome})"
    assert outcome.kind == "parked", f"an invalid message was not parked: {outcome}"
    assert outcome.reason.strip() and outcome.code.strip(), f"parked without a reason or code: {outcome}"
    return outcome


def mutate(data: st.DataObject, raw: bytes, others: list[bytes]) -> bytes:
    out = bytearray(raw)
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "splice", "append"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(out) - 1))
            out[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        out = out[: data.draw(st.integers(0, len(out) - 1))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(out)))
        out[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    elif how == "append":
        out += data.draw(st.binary(min_size=1, max_size=16))
    else:  # another message's signature, proof or header bytes in this one
        other = data.draw(st.sampled_from(others))
        i = data.draw(st.integers(0, min(len(out), len(other)) - 1))
        out[i:] = other[i:]
    return bytes(out)


@FUZZ
@given(raw=st.binary(max_size=600))
def test_arbitrary_bytes_are_parked_with_a_reason(pair: Pair, raw: bytes) -> None:
    parked(pair, raw)
    parked(pair, b"FLE1" + raw)


@FUZZ
@given(data=st.data())
def test_mutated_valid_messages_are_parked_and_change_nothing(pair: Pair, data: st.DataObject) -> None:
    every = pair.applied + pair.fresh
    raw = data.draw(st.sampled_from(every))
    mutated = mutate(data, raw, every)
    if mutated in every:
        return  # the splice reproduced a valid message
    parked(pair, mutated)


HEADER_FORGERIES = {
    # a forger naming A itself as the origin: not "our own echo", it must be parked like any forgery
    "origin": lambda h: {**h, "origin": A},
    "key": lambda h: {**h, "key": h["key"][:-1] + ("0" if h["key"][-1] != "0" else "1")},
    "version": lambda h: {**h, "version": h["version"] + 1},
    "prev": lambda h: {**h, "prev": "1" * 64},
    "topic": lambda h: {**h, "topic": "ledger.domain.flags:Protection.FlagsReleased"},
    "local-only topic": lambda h: {**h, "topic": "ledger.domain.cases:ProtectionCase.Opened"},
    "foreign topic": lambda h: {**h, "topic": "os:system"},
    "stream": lambda h: {**h, "stream": "not-a-uuid"},
    "time": lambda h: {**h, "time": "2001-01-01T00:00:00+00:00"},
    "digest": lambda h: {**h, "digest": "0" * 64},
    "enc": lambda h: {**h, "enc": "aesgcm"},
}


@FUZZ
@given(data=st.data(), field=st.sampled_from(sorted(HEADER_FORGERIES)))
def test_forged_headers_on_valid_payloads_and_seals_are_parked(pair: Pair, data: st.DataObject, field: str) -> None:
    env = Envelope.from_bytes(data.draw(st.sampled_from(pair.applied + pair.fresh)))
    header = HEADER_FORGERIES[field](json.loads(env.header_bytes))
    forged = Envelope(Header.from_bytes(json.dumps(header).encode()).to_bytes(), env.payload, env.seal)
    parked(pair, forged.to_bytes())


def test_a_forged_message_claiming_to_come_from_a_itself_is_parked_not_skipped(pair: Pair) -> None:
    """Found by this suite: ingest answered ``own`` (skip, no trace) for anything whose header named an
    agency hosted here, before checking its signature, so a forgery claiming A as origin vanished instead of
    being parked. Fixed in consumers/ingest.py: an own-origin message is skipped only if it is the very
    event A's log holds; anything else is parked."""
    own = [raw for _, _, raw in publishable(pair.a.app)]
    env = Envelope.from_bytes(own[-1])
    assert ingest(pair.a.app, own[-1]).kind == "own", "A's own echo is still recognised"
    header = {**json.loads(env.header_bytes), "topic": "ledger.domain.flags:Protection.FlagsReleased"}
    forged = Envelope(Header.from_bytes(json.dumps(header).encode()).to_bytes(), env.payload, env.seal)
    assert parked(pair, forged.to_bytes()).code


def test_the_valid_messages_apply_exactly_once(pair: Pair) -> None:
    """The harness is honest: unmodified fresh messages apply (in order), then are duplicates."""
    pending = PendingStore(pair.a.app, pair.a.engine)
    before = pair.a.app.max_position()
    kinds = [ingest(pair.a.app, raw, pending).kind for raw in pair.fresh]
    assert set(kinds) == {"applied"}
    assert pair.a.app.max_position() == before + len(pair.fresh)
    assert {ingest(pair.a.app, raw, pending).kind for raw in pair.applied + pair.fresh} == {"duplicate"}
    pair.applied.extend(pair.fresh)
    pair.fresh.clear()


@pytest.mark.long
def test_atheris_coverage_guided_fuzzing_of_ingest() -> None:
    """Long job, optional dependency: ``FLAGLEDGER_ATHERIS_RUNS`` (default 20,000) atheris inputs."""
    import os
    import subprocess
    import sys

    pytest.importorskip("atheris", reason='install the fuzz extra: pip install -e ".[fuzz]"')
    runs = os.environ.get("FLAGLEDGER_ATHERIS_RUNS", "20000")
    done = subprocess.run(
        [sys.executable, "-m", "tests.adversarial.fuzz_ingest_atheris", f"-atheris_runs={runs}"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {runs}" in done.stderr
