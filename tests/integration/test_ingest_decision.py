"""One ingest decision: ``ingest`` (one by one) and ``ingest_many`` (batched) answer every envelope alike.

Threat: **a peer agency** (A) with its own valid key and a patched build that signs anything
(``tests/support/forge.py``), and **the network** (garbage, truncated and bit-flipped messages, redeliveries,
messages out of order). Both entry paths of ``consumers.ingest`` take the decision of ``consumers.decide``;
if one path ever decided by a rule the other lacks, a forgery refused on one path could be applied on the other.
A node hosting C receives, in one order, a mix of honest events of B and A, forgeries of B's streams by A,
duplicates, a gap and its filling, and broken bytes: once through ``ingest`` and once, from an identical copy of
its data directory, through ``ingest_many``. Every outcome (kind, code, reason, events applied), the log and the
held-back events must come out the same.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from consumers.decide import APPLY, StoreView, admit, decide, parse
from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node, init_node, open_node
from tests.conftest import A, B, C, enrol_standard_staff
from tests.support.forge import forgeries
from tests.support.people import individual_number
from tests.support.trust import trust

NAR, ND = "NO_AUTO_RESPONSE", "NON_DISCLOSURE"


@dataclass
class Mix:
    target: Path  # C's node, closed: each path opens its own copy
    messages: list[bytes]


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mix]:
    root = tmp_path_factory.mktemp("decision")
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = init_node(root / "a", (AgencySpec(A, "A市", "municipality"),), pseudonym_key_file=key)
    b = init_node(root / "b", (AgencySpec(B, "B市", "municipality"),), pseudonym_key_file=key)
    c = init_node(root / "c", (AgencySpec(C, "C市", "municipality"),), pseudonym_key_file=key)
    try:
        for n in (a, b, c):
            enrol_standard_staff(n)
        for here, there in ((a, b), (c, a), (c, b)):
            trust(here, there)
        for subject in (individual_number(), individual_number()):
            rid = b.app.request_flags(Actor(B, "req"), subject, [NAR, ND])
            b.app.approve_request(Actor(B, "apr"), rid)
            b.app.execute_request(Actor(B, "op"), rid)
        from_b = [raw for _, _, raw in publishable(b.app)]
        pending_a = PendingStore(a.app, a.engine)
        for raw in from_b:  # A holds B's history, so its forgeries chain to B's streams
            assert ingest(a.app, raw, pending_a).kind == "applied"
        from_a = [raw for _, _, raw in publishable(a.app) if raw not in from_b]
        forged = [f.raw for f in forgeries(a.app, A, [B])]
        assert forged, "the peer must have something to forge"
        # the first event of a stream B wrote more to comes last: what follows it waits (or, without a
        # pending store, is parked as a gap), and so do the forgeries chained to B's copy of that stream
        versions = [Envelope.from_bytes(raw).header for raw in from_b]
        k = next(
            i
            for i, h in enumerate(versions)
            if h.version == 1 and any(o.stream == h.stream and o.version == 2 for o in versions)
        )
        broken = bytearray(from_b[-1])
        broken[len(broken) // 2] ^= 0x55
        unreadable = bytearray(from_b[0])  # the envelope's frame intact, its header no JSON (read lazily)
        unreadable[9] = 0xE3
        messages = [
            *from_a,
            *from_b[:k],
            b"not an envelope",
            *from_b[k + 1 :],
            *forged[:40],
            from_b[k],  # the gap fills: what waited is released
            *from_b[:3],  # redelivered
            from_b[-1][: len(from_b[-1]) // 2],
            bytes(broken),
            bytes(unreadable),
            *forged[40:80],
        ]
    finally:
        a.close()
        b.close()
        c.close()
    yield Mix(root / "c", messages)


def state(node: Node) -> tuple[object, ...]:
    rows = node.app.recorder.select_notifications(start=1, limit=100_000)
    return (
        [(r.originator_id, r.originator_version, r.topic) for r in rows],
        sorted(PendingStore(node.app, node.engine).waiting()),
        sorted(r.key_id for r in node.app.keyring.records()),
    )


def run(mix: Mix, where: Path, batched: bool, held: bool) -> tuple[list[Outcome], tuple[object, ...]]:
    shutil.copytree(mix.target, where)
    node = open_node(where)
    try:
        pending = PendingStore(node.app, node.engine) if held else None
        if batched:
            outcomes = ingest_many(node.app, mix.messages, pending)
        else:
            outcomes = [ingest(node.app, raw, pending) for raw in mix.messages]
        return outcomes, state(node)
    finally:
        node.close()


@pytest.mark.parametrize("held", [True, False], ids=["pending", "no-pending"])
def test_both_paths_decide_every_envelope_alike(mix: Mix, tmp_path: Path, held: bool) -> None:
    one, one_state = run(mix, tmp_path / "one", batched=False, held=held)
    many, many_state = run(mix, tmp_path / "many", batched=True, held=held)
    for i, (x, y) in enumerate(zip(one, many, strict=True)):
        assert x == y, f"message {i}: ingest → {x}, ingest_many → {y}"
    assert one_state == many_state
    kinds = {o.kind for o in one}
    codes = {o.code for o in one if o.kind == "parked"}
    # the mix reached the rules it is meant to exercise (else the comparison proves little)
    assert {"applied", "duplicate", "parked"} <= kinds
    assert {"foreign_writer", "malformed"} <= codes
    assert ("held_gap" in kinds) if held else ("gap" in codes)


def test_the_store_view_and_an_empty_batch_view_agree(mix: Mix, tmp_path: Path) -> None:
    """Before anything is staged, the batch's view of the ledger is the store's (the decision sees no difference)."""
    from consumers.ingest import _BatchView

    shutil.copytree(mix.target, tmp_path / "c")
    node = open_node(tmp_path / "c")
    try:
        decided = 0
        for raw in mix.messages:
            env = parse(raw)
            if isinstance(env, Outcome):
                continue
            store, batch = StoreView(node.app), _BatchView(node.app)
            admitted = admit(node.app, env, store)
            assert admitted == admit(node.app, env, batch)
            if isinstance(admitted, Outcome) or env.header.version == 1:
                continue  # (a batch stages a first event unread: its clash is the store's unique key's to find)
            stream, event = admitted
            assert isinstance(stream, UUID)
            mine = decide(node.app, env, stream, event, store, can_hold=True)
            assert mine == decide(node.app, env, stream, event, batch, can_hold=True)
            decided += 1
            if mine is APPLY:
                ingest(node.app, raw)  # the ledger moves on as it would
        assert decided > 10
    finally:
        node.close()
