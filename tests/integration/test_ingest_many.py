"""ingest_many (one transaction per Kafka poll) decides every envelope exactly as ingest does one by one.

The same hostile sequence — repeats inside and across batches, streams out of order (gaps held and then
released), a forged copy, garbage, and events already stored — goes to two fresh copies of node A: one
envelope at a time through ``ingest``, in batches through ``ingest_many``. Outcomes, the resulting logs
and the projections must be identical, and the batched log must pass ``audit verify``.
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path

from consumers.ingest import PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.integration.test_projections_rebuild import snapshot
from tests.support.approvals import approve_fully
from tests.support.trust import trust


def _node_a(make_node, key: Path, b: Node, name: str) -> Node:
    a = make_node((AgencySpec(A, "A市", "municipality"),), name=name, pseudonym_key_file=key)
    trust(a, b, B, "B市")
    return a


def _log(node: Node) -> list[tuple[str, int, str]]:
    """The log in order; the node's own streams about people (its staff) have ids keyed with its own secret,
    so two nodes hosting the same agency name them differently: those are compared by version and topic."""

    def stream(n: object) -> str:
        own = node.app.signed_mapper.open(n.state).header.origin in node.app.hosted  # type: ignore[attr-defined]
        return "own" if own else str(n.originator_id)  # type: ignore[attr-defined]

    return [
        (stream(n), n.originator_version, n.topic) for n in node.app.recorder.select_notifications(start=1, limit=1000)
    ]


def test_batched_ingest_equals_one_by_one(make_node, tmp_path: Path, person) -> None:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    people = [person() for _ in range(4)]
    for x in people[:3]:
        rid = b.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
        b.app.approve_request(Actor(B, "apr"), rid)
        b.app.execute_request(Actor(B, "op"), rid)
    for x in people:
        b.app.request_provision(
            Actor(B, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    release = b.app.request_flags(
        Actor(B, "req"), people[0], ["NO_AUTO_RESPONSE"], kind="release", explanation="説明済み"
    )
    approve_fully(b.app, B, release)
    b.app.execute_request(Actor(B, "op"), release)
    published = [raw for _, _, raw in publishable(b.app)]
    assert len(published) > 12
    rng = random.Random(3)
    forged = bytearray(published[5])
    forged[len(forged) // 2] ^= 1
    stream: list[bytes] = published[:3]  # stored before the batches start (duplicates later)
    rest = published[3:]
    shuffled = rest[:]
    rng.shuffle(shuffled)  # streams out of order: gaps are held, then released
    stream += [*shuffled, bytes(forged), b"garbage", *rng.sample(published, 5), *rest]

    one, many = _node_a(make_node, key, b, "one"), _node_a(make_node, key, b, "many")
    for raw in published[:3]:
        assert ingest(one.app, raw).kind == "applied"
        assert ingest(many.app, raw).kind == "applied"
    p_one, p_many = PendingStore(one.app, one.engine), PendingStore(many.app, many.engine)
    expected = [ingest(one.app, raw, p_one) for raw in stream[3:]]
    got = []
    for i in range(3, len(stream), 7):
        got.extend(ingest_many(many.app, stream[i : i + 7], p_many))
    assert [(o.kind, o.code) for o in got] == [(o.kind, o.code) for o in expected]
    assert {o.kind for o in expected} >= {"applied", "duplicate", "held_gap", "parked"}
    assert _log(many) == _log(one)
    assert p_many.waiting() == p_one.waiting() == []
    one.projector.catch_up()
    many.projector.catch_up()
    assert snapshot(many, opened=True) == snapshot(one, opened=True)
    assert verify_log(many.app).ok
