"""A stolen signing key cannot lift a protection by backdating, once its revocation has reached the peer.

B protects X; A learns of it and holds requests about X. Then B's key is stolen together with a copy of B's
database. B rotates to a new key and revokes the stolen one from now, and A ingests that. The thief, still
holding the old key, releases X's flags with events stamped *before* the revocation took effect and chained
to the real streams' heads: every signature verifies. A must not apply them — it parks them, code
``revoked_key_late`` — so A keeps holding requests about X. An operator who confirmed with B that an event
is genuine can still apply it (``consumers replay ID --accept-revoked-key``).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from consumers.ingest import PendingStore, ingest, ingest_many
from consumers.kafka_io import parked, parked_messages, replay_parked
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit import verify_log
from ledger.bootstrap import AgencySpec, Node, open_node, rotate_key
from ledger.clock import ENV as SKEW
from tests.conftest import A, B
from tests.support.trust import trust

FLAGS = ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"]


@pytest.fixture
def scene(make_node, tmp_path: Path, backend: str | None, person, monkeypatch: pytest.MonkeyPatch):
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key, database_url=backend)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    x = person()
    rid = b.app.request_flags(Actor(B, "req"), x, FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    shipped = _ship(b, a, 0)
    assert _ask(a, x) == "in_progress"

    # the theft: the old key and a copy of the database, taken while B's files are consistent
    stolen_key = b.app.signers[B].key_id
    copied_at = b.app.max_position()
    b.app.close()
    shutil.copytree(b.config.data_dir, tmp_path / "thief")
    b = open_node(b.config.data_dir)
    thief = open_node(tmp_path / "thief")

    rotate_key(b, Actor(B, "admin"))
    b.app.revoke_key(Actor(B, "admin"), stolen_key, "signing key stolen")
    shipped = _ship(b, a, shipped)
    revoked = a.app.keyring.revoked(stolen_key)
    assert revoked is not None and revoked.revoked_from is not None

    # the thief's release, stamped 30 s before the revocation took effect
    monkeypatch.setenv(SKEW, "-30")
    release = thief.app.request_flags(Actor(B, "req"), x, FLAGS, kind="release", explanation="forged")
    thief.app.approve_request(Actor(B, "apr"), release)
    thief.app.execute_request(Actor(B, "op"), release)
    monkeypatch.delenv(SKEW)
    forged = [raw for _, _, raw in publishable(thief.app, copied_at)]  # approvals are local-only: the removal
    assert forged and all(b"Protection.Flags" in raw for raw in forged), forged
    yield a, b, x, forged
    thief.close()
    b.close()


def _ship(src: Node, dst: Node, after: int) -> int:
    pending = PendingStore(dst.app, dst.engine)
    last = after
    for position, _, raw in publishable(src.app, after):
        assert ingest(dst.app, raw, pending).kind == "applied"
        last = position
    dst.projector.catch_up()
    return last


def _ask(a: Node, x: str) -> str:
    answer = a.app.request_provision(Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税")
    return answer.status


def test_backdated_events_under_the_revoked_key_are_parked_one_by_one(scene) -> None:
    a, _, x, forged = scene
    before = a.app.max_position()
    outcomes = [ingest(a.app, raw, PendingStore(a.app, a.engine)) for raw in forged]
    assert {o.code for o in outcomes} == {"revoked_key_late"}, outcomes
    assert "revoked" in outcomes[0].reason and "--accept-revoked-key" in outcomes[0].reason
    assert a.app.max_position() == before, "nothing of the forgery reached A's ledger"
    a.projector.catch_up()
    assert _ask(a, x) == "in_progress", "X is still protected at A"
    assert verify_log(a.app).ok


def test_backdated_events_under_the_revoked_key_are_parked_in_a_batch(scene) -> None:
    a, _, x, forged = scene
    before = a.app.max_position()
    outcomes = ingest_many(a.app, forged, PendingStore(a.app, a.engine))
    assert {o.code for o in outcomes} == {"revoked_key_late"}, outcomes
    assert a.app.max_position() == before
    a.projector.catch_up()
    assert _ask(a, x) == "in_progress"


def test_an_event_the_agency_confirms_is_applied_on_replay(scene) -> None:
    """The parked message is kept whole; accepting it applies it and marks it so in `consumers parked`."""
    a, _, _, forged = scene
    outcome = ingest(a.app, forged[0], PendingStore(a.app, a.engine))
    with a.engine.begin() as conn:  # as the consumer parks it (tests/integration/test_kafka_nationwide.py)
        conn.execute(parked_messages.insert().values(
            at="2026-11-26T00:00:00+00:00", code=outcome.code, reason=outcome.reason, source="b/0@7",
            envelope=forged[0], status="parked"))
    [row] = parked(a)
    assert row["code"] == "revoked_key_late" and row["status"] == "parked"
    assert replay_parked(a, row["id"]).kind == "parked", "a plain replay parks it again"
    before = a.app.max_position()
    assert replay_parked(a, row["id"], accept_revoked_key=True).kind == "applied"
    assert a.app.max_position() == before + 1
    assert parked(a)[0]["status"] == "accepted_revoked"


def test_events_held_before_the_revocation_are_still_duplicates(scene) -> None:
    """Redelivery of what A already holds (signed by the now revoked key) is not parked."""
    a, b, _, _ = scene
    first = next(raw for _, _, raw in publishable(b.app, 0))
    assert ingest(a.app, first, PendingStore(a.app, a.engine)).kind == "duplicate"
