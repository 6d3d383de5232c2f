"""Clock skew between nodes: B's clock runs 6 hours ahead, A's 6 hours behind (``FLAGLEDGER_CLOCK_SKEW_SECONDS``).

What is decided, and checked here:

* Ingest orders by each stream's hash chain (version + prev), never by timestamps: B's events, 12 hours in
  A's future, delivered to A backwards and then again, are applied exactly once each, in stream order.
* A signature is judged against the signer's own timeline — the time in the signed header against the
  validity the key's agency declared for it — never against the receiver's clock. So a skewed peer is
  accepted (its times and its keys' validity come from the same wrong clock), including across a key
  rotation made while skewed.
* A node whose clock moves back past its signing key's ``valid_from`` (the key was made while the clock ran
  ahead) refuses to sign, clearly, and records nothing — rather than writing events that ``audit verify``
  and every peer would reject. It can sign again once its clock passes that time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger import clock
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.errors import UntrustedKeyError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node, rotate_key
from tests.conftest import A, B, enrol_standard_staff
from tests.faults.checks import assert_node_sound
from tests.support.trust import trust

HOURS = 3600


@contextmanager
def skew(monkeypatch: pytest.MonkeyPatch, hours: float) -> Iterator[None]:
    monkeypatch.setenv(clock.ENV, str(hours * HOURS))
    try:
        yield
    finally:
        monkeypatch.delenv(clock.ENV)


def protect(node: Node, people: list[str]) -> None:
    for x in people:
        rid = node.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
        node.app.approve_request(Actor(B, "apr"), rid)
        node.app.execute_request(Actor(B, "op"), rid)


def deliver(receiver: Node, origin: Node, reverse: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    pending = PendingStore(receiver.app, receiver.engine)
    raws = [raw for _, _, raw in publishable(origin.app)]
    if reverse:  # newest first — but key announcements and the staff roster first of all (a flag change under an
        # unannounced key, or signed by staff the roster does not yet certify, is parked, not held)
        announcements = ("ledger.domain.keys:", "ledger.domain.roster:")
        raws = sorted(
            reversed(raws), key=lambda raw: not Envelope.from_bytes(raw).header.topic.startswith(announcements)
        )
    for raw in raws:
        kind = ingest(receiver.app, raw, pending).kind
        counts[kind] = counts.get(kind, 0) + 1
    receiver.projector.catch_up()
    return counts


def test_nodes_hours_apart_exchange_events_in_stream_order(
    make_node, tmp_path: Path, person, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    with skew(monkeypatch, +6):
        b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key, staff=False)
        enrol_standard_staff(b)
    with skew(monkeypatch, -6):
        a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key, staff=False)
        enrol_standard_staff(a)
        trust(a, b, B)
    people = [person() for _ in range(6)]
    with skew(monkeypatch, +6):
        trust(b, a, A)
        protect(b, people[:3])
        rotate_key(b, Actor(B, "admin"))  # a rotation made while the clock runs ahead
        protect(b, people[3:])
    with skew(monkeypatch, -6):
        backwards = deliver(a, b, reverse=True)
        again = deliver(a, b, reverse=False)
        answer = a.app.request_provision(
            Actor(A, "counter"), A, people[-1], legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    assert "parked" not in backwards and backwards.get("held_gap", 0) > 0, backwards
    assert set(again) == {"duplicate"}, again
    assert answer.status == "in_progress"  # B's protection, 12 hours "in A's future", protects at A
    versions: dict[str, list[int]] = {}
    for _, row, env in a.app.envelopes():
        if env.header.origin == B:
            versions.setdefault(str(row.originator_id), []).append(row.originator_version)
    assert versions and all(v == list(range(1, len(v) + 1)) for v in versions.values()), versions
    with skew(monkeypatch, +6):
        to_b = deliver(b, a, reverse=True)  # A's events, 12 hours "in B's past"
    assert "parked" not in to_b and to_b.get("applied", 0) > 0, to_b
    for node in (a, b):
        assert verify_log(node.app).ok

    # B's clock is corrected (jumps back 6 hours): its current key is not valid before B's old "now"
    before = b.app.max_position()
    with pytest.raises(UntrustedKeyError, match="refusing to sign") as refused:
        protect(b, [person()])
    assert refused.value.code == "key_not_yet_valid" and "clock" in str(refused.value)
    assert b.app.max_position() == before and verify_log(b.app).ok
    with skew(monkeypatch, +6.1):  # once the clock has passed the key's valid_from, B signs again
        protect(b, [person()])
    assert b.app.max_position() > before and verify_log(b.app).ok
    a_dir, b_dir = a.config.data_dir, b.config.data_dir
    a.close()
    b.close()
    assert_node_sound(a_dir)
    assert_node_sound(b_dir)
