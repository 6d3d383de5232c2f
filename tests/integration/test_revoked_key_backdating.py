"""A stolen signing key cannot lift a protection by backdating, once its revocation has reached the peer.

B protects X; A learns of it and holds requests about X. Then B's key is stolen together with a copy of B's
database. B rotates to a new key and revokes the stolen one from now, and A ingests that. The thief, still
holding the old key, releases X's flags with events stamped *before* the revocation took effect and chained
to the real streams' heads: every signature verifies. A must not apply them — it parks them, code
``revoked_key_late`` — so A keeps holding requests about X. An operator who confirmed with B that an event
is genuine can still apply it (``consumers replay ID --accept-revoked-key``) — but only with a second
administrator's approval, both steps recorded as ledger events (threat: an administrator acting alone, or a
shell user naming any staff member: four eyes, every privilege recorded).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from pathlib import Path

import pytest

from consumers.ingest import PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.parked import parked, replay_parked
from consumers.revoked_acceptance import accept_revoked
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.cli.main import main
from ledger.clock import ENV as SKEW
from ledger.errors import InputError, PermissionDenied, SelfApprovalError, StateConflict
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node, open_node, rotate_key
from ledger.runtime.tables import parked_messages
from tests.conftest import A, B
from tests.support.approvals import approve_fully
from tests.support.ship import ship
from tests.support.staff import activate_second_administrator, second_administrator
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
    shipped = ship(b, a, 0)
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
    shipped = ship(b, a, shipped)
    revoked = a.app.keyring.revoked(stolen_key)
    assert revoked is not None and revoked.revoked_from is not None

    # the thief's release, stamped 30 s before the revocation took effect
    monkeypatch.setenv(SKEW, "-30")
    release = thief.app.request_flags(Actor(B, "req"), x, FLAGS, kind="release", explanation="forged")
    approve_fully(thief.app, B, release)
    thief.app.execute_request(Actor(B, "op"), release)
    monkeypatch.delenv(SKEW)
    forged = [raw for _, _, raw in publishable(thief.app, copied_at)]  # approvals are local-only: the removal
    # (the removal, and the warning to every holder that it leaves nobody holding: docs/year.md)
    assert forged and all(b"Protection.Flags" in raw or b"LastHolderWarning.Raised" in raw for raw in forged)
    yield a, b, x, forged
    thief.close()
    b.close()


def _ask(a: Node, x: str) -> str:
    answer = a.app.request_provision(
        Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
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


def _park(a: Node, raw: bytes) -> int:
    """Park ``raw`` as the consumer does (tests/integration/test_kafka_nationwide.py); its parked id."""
    outcome = ingest(a.app, raw, PendingStore(a.app, a.engine))
    assert outcome.code == "revoked_key_late"
    with a.engine.begin() as conn:
        conn.execute(
            parked_messages.insert().values(
                at="2026-11-26T00:00:00+00:00",
                code=outcome.code,
                reason=outcome.reason,
                source="b/0@7",
                envelope=raw,
                status="parked",
            )
        )
    [row] = [r for r in parked(a) if r["status"] == "parked"]
    return int(row["id"])


def _acceptance_events(a: Node) -> list[tuple[str, dict[str, object]]]:
    out = []
    for _, _, env in a.app.envelopes():
        if env.header.topic.startswith("ledger.domain.parked:RevokedKeyAcceptance."):
            ev = a.app.signed_mapper.decode(env)
            out.append((env.header.topic.rsplit(".", 1)[1], dict(vars(ev))))
    return out


def test_an_event_the_agency_confirms_is_applied_after_two_administrators_agree(scene) -> None:
    """The parked message is kept whole; one administrator proposes applying it (saying how B confirmed it),
    a second one approves, and only then is it applied and marked so in `consumers parked`."""
    a, _, _, forged = scene
    second_administrator(a, A)  # as `init --second-admin admin2` makes it (tests/support/staff.py)
    parked_id = _park(a, forged[0])
    assert replay_parked(a, parked_id).kind == "parked", "a plain replay parks it again"
    before = a.app.max_position()
    with pytest.raises(SelfApprovalError):  # no approval recorded: the flag alone lets nothing in
        replay_parked(a, parked_id, accept_revoked_key=True)
    with pytest.raises(PermissionDenied):  # an approver of flags is no administrator
        accept_revoked(a, parked_id, Actor(A, "apr"), "B confirmed by phone")
    with pytest.raises(InputError):  # the proposer says how the originating agency confirmed it
        accept_revoked(a, parked_id, Actor(A, "admin"), " ")
    assert a.app.max_position() == before

    step = accept_revoked(a, parked_id, Actor(A, "admin"), "B's administrator confirmed event by phone")
    assert step.step == "proposed" and step.outcome is None
    assert a.app.max_position() == before + 1 and parked(a)[0]["status"] == "parked", "proposed, not applied"
    with pytest.raises(SelfApprovalError):
        accept_revoked(a, parked_id, Actor(A, "admin"), "again")
    assert a.app.max_position() == before + 1

    step = accept_revoked(a, parked_id, Actor(A, "admin2"), "")
    assert step.step == "approved" and step.outcome is not None and step.outcome.kind == "applied"
    assert a.app.max_position() == before + 3, "the approval, then the event itself"
    assert parked(a)[0]["status"] == "accepted_revoked"
    header = Envelope.from_bytes(forged[0]).header
    (proposed, p), (approved, ap) = _acceptance_events(a)
    assert (proposed, approved) == ("Proposed", "Approved")
    assert (p["proposed_by"], ap["by"], p["parked_id"], p["event_id"], p["key_id"]) == (
        "admin",
        "admin2",
        parked_id,
        header.event_id,
        header.key_id,
    )
    assert p["digest"] == hashlib.sha256(forged[0]).hexdigest()
    assert not [t for _, _, t in publishable(a.app, before)], "local-only: never published"
    with pytest.raises(StateConflict):
        accept_revoked(a, parked_id, Actor(A, "admin2"), "")
    assert verify_log(a.app).ok


def test_an_approval_lets_in_only_the_bytes_that_were_proposed(scene) -> None:
    """An insider who swaps the parked bytes after the proposal gets a fresh proposal, not an approval."""
    a, _, _, forged = scene
    second_administrator(a, A)  # as `init --second-admin admin2` makes it (tests/support/staff.py)
    parked_id = _park(a, forged[0])
    accept_revoked(a, parked_id, Actor(A, "admin"), "B confirmed event 1 by phone")
    with a.engine.begin() as conn:
        swapped = forged[0][:-1] + bytes([forged[0][-1] ^ 1])  # any other bytes than those proposed
        conn.execute(parked_messages.update().where(parked_messages.c.id == parked_id).values(envelope=swapped))
    before = a.app.max_position()
    step = accept_revoked(a, parked_id, Actor(A, "admin2"), "looks fine")
    assert step.step == "proposed" and a.app.max_position() == before + 1, "nothing applied"
    assert parked(a)[0]["status"] == "parked"


def test_the_command_line_takes_two_administrators(scene, capsys: pytest.CaptureFixture[str]) -> None:
    a, _, _, forged = scene
    activate_second_administrator(a, A)  # as `init --second-admin admin2` makes it, then activated to sign in
    parked_id = str(_park(a, forged[0]))
    d = str(a.config.data_dir)

    def cli(*argv: str) -> tuple[int, str]:
        try:
            code = main(["--data-dir", d, "consumers", "replay", parked_id, "--accept-revoked-key", *argv])
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    before = a.app.max_position()
    code, text = cli()
    assert code == 4 and "[not_signed_in]" in text, "nobody signed in, no acceptance"
    assert cli("--as", f"{A}/admin")[0] == 2, "the proposer says how B confirmed it"
    assert a.app.max_position() == before
    code, text = cli("--as", f"{A}/admin", "--note", "B's administrator confirmed by phone")
    assert code == 0 and json.loads(text)["outcome"] == "proposed"
    assert cli("--as", f"{A}/admin")[0] == 5, "the same administrator cannot approve"
    code, text = cli("--as", f"{A}/admin2")
    assert code == 0 and json.loads(text)["outcome"] == "applied"
    assert a.app.max_position() == before + 3


def test_events_held_before_the_revocation_are_still_duplicates(scene) -> None:
    """Redelivery of what A already holds (signed by the now revoked key) is not parked."""
    a, b, _, _ = scene
    first = next(raw for _, _, raw in publishable(b.app, 0))
    assert ingest(a.app, first, PendingStore(a.app, a.engine)).kind == "duplicate"
