"""Staff sign their own acts (issue 18): a shell user with every file and secret of the node, but no staff
password, cannot produce a request, approval or execution that the app, a peer's ingest or ``audit verify``
accepts; a peer cannot borrow another agency's staff signatures; wrong passwords are recorded and rate-limited.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import StoredEvent

from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.app.credentials import StaffProof, StaffSigner
from ledger.audit.verify import verify_log
from ledger.domain.credentials import StaffCredential
from ledger.domain.flags import Protection
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    act_statement,
    code_digest,
    enrol_statement,
    note_digest,
    possession_statement,
)
from ledger.errors import AuthError, InputError, IntegrityError, PermissionDenied
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B, C, NodeFactory, password_of
from tests.support.api import auth, client
from tests.support.forge import forge
from tests.support.people import individual_number
from tests.support.trust import trust

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]


@pytest.fixture
def pair(make_node: NodeFactory, tmp_path: Path) -> tuple[Node, Node]:
    """B's node (the one the shell user owns) and C's node (a peer that ingests B's events)."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    c = make_node((AgencySpec(C, "C市", "municipality"),), name="c", pseudonym_key_file=key)
    trust(b, c)
    trust(c, b)
    return b, c


def deliver(src: Node, dst: Node, after: int = 0) -> dict[str, Outcome]:
    """Every event ``src`` publishes after ``after``, ingested by ``dst``: topic of each non-applied → outcome."""
    pending = PendingStore(dst.app, dst.engine)
    refused: dict[str, Outcome] = {}
    for _, _, raw in publishable(src.app, after):
        outcome = ingest(dst.app, raw, pending)
        if outcome.kind != "applied":
            refused[Envelope.from_bytes(raw).header.topic.rsplit(":", 1)[1]] = outcome
    return refused


def shell_user_key(agency: str) -> StaffSigner:
    """A key the shell user makes: a well-formed staff key, certified nowhere."""
    return StaffSigner(agency, "apr", Ed25519PrivateKey.generate())


def forge_execution(b: Node, rid: UUID, extra_acts: list[dict[str, Any]]) -> None:
    """The shell user's patched build: Executed and FlagsSet written with the node key, evidence made up of the
    request's recorded acts plus ``extra_acts`` (no operator signs: no password)."""
    app = b.app
    request = app.flag_request(rid)
    request._executed(by="op", staff_signature=None)  # the event method itself: no check, no signature
    evidence = request.evidence()
    evidence["acts"] = list(evidence["acts"]) + extra_acts
    pid = app.ids.protection(B, request.subject)
    protection = app.find(Protection, pid) or Protection(id=pid, agency=B, subject=request.subject)
    protection._set(
        agency=B,
        subject=request.subject,
        flags=request.flags,
        request_id=request.id,
        by="op",
        reason=request.reason,
        review_date=request.review_date,
        evidence=evidence,
    )
    app.save_as(B, request, protection)


def test_an_approval_written_with_the_node_key_is_refused_parked_and_named(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user with every secret of the node (no password) writes "approved by apr" with the node
    key (a) unsigned and (b) signed by a key of their own: the app refuses to execute, the peer parks the flag
    change, ``audit verify`` names both events."""
    b, c = pair
    app, x = b.app, individual_number()
    deliver(b, c)
    start = b.app.max_position()
    rid = app.request_flags(Actor(B, "req"), x, FLAGS)
    request = app.flag_request(rid)
    request._approved(by="apr", note="", staff_signature=None)  # (a) no signature at all
    app.save_as(B, request)
    with pytest.raises(IntegrityError) as refused:
        app.execute_request(Actor(B, "op"), rid)
    assert refused.value.code == "staff_signature" and "approver" in str(refused.value)
    mine = shell_user_key(B)  # (b) signed, by a key no administrator certified
    digest = app.flag_request(rid).digest()
    forged = {"act": APPROVED, "staff": "apr", "note": note_digest("")}
    forged |= mine.sign(act_statement(B, APPROVED, str(rid), digest, "apr", note_digest("")))
    op = {"act": EXECUTED, "staff": "op", "note": note_digest("")}
    op |= mine.sign(act_statement(B, EXECUTED, str(rid), digest, "op", note_digest("")))
    forge_execution(b, rid, [forged, op])
    refused_at_peer = deliver(b, c, start)
    assert refused_at_peer["Protection.FlagsSet"].code == "staff_signature"
    assert "not certified" in refused_at_peer["Protection.FlagsSet"].reason
    assert c.app.verified_flags(c.app.subject(x)) == {} if hasattr(c.app, "verified_flags") else True
    report = verify_log(app, workers=1)
    assert not report.ok and report.first_bad is not None and report.first_bad.code == "staff_signature"
    named = {f.topic.rsplit(":", 1)[1] for f in report.staff_findings}
    assert {"FlagRequest.Approved", "FlagRequest.Executed", "Protection.FlagsSet"} <= named


def test_a_signature_replayed_from_another_request_is_refused_parked_and_named(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user copies apr's and op's real signatures from one request onto another (c)."""
    b, c = pair
    app = b.app
    first = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    app.approve_request(Actor(B, "apr"), first)
    app.execute_request(Actor(B, "op"), first)
    deliver(b, c)
    start = app.max_position()
    genuine = {a["act"]: a for a in app.flag_request(first).acts}
    second = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    request = app.flag_request(second)
    request._approved(by="apr", note="", staff_signature={k: genuine[APPROVED][k] for k in ("key_id", "signature")})
    app.save_as(B, request)
    with pytest.raises(IntegrityError) as refused:
        app.execute_request(Actor(B, "op"), second)
    assert refused.value.code == "staff_signature" and "does not verify" in str(refused.value)
    forge_execution(b, second, [genuine[EXECUTED]])
    assert deliver(b, c, start)["Protection.FlagsSet"].code == "staff_signature"
    report = verify_log(app, workers=1)
    assert [f.topic.rsplit(".", 1)[1] for f in report.staff_findings] == ["Approved", "Executed", "FlagsSet"]


def test_a_key_certified_with_the_node_key_or_a_second_root_certifies_nothing(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user certifies a key of their own for apr (b): a KeyCertified without a real
    administrator's signature, then a second roster root. The app signs nothing with it, the peer parks both
    roster events, ``audit verify`` names them."""
    b, c = pair
    app = b.app
    deliver(b, c)
    start = app.max_position()
    roster = app.find(StaffRoster, StaffRoster.create_id(B))
    assert roster is not None
    mine = shell_user_key(B)
    code = secrets.token_urlsafe(24)
    digest = code_digest(code)
    admin_key = app.roster(B).current_key("admin")  # type: ignore[union-attr]
    assert admin_key is not None
    cert = {
        "staff": "apr",
        "key_id": mine.key_id,
        "public_hex": mine.public_hex,
        "certifies": True,
        "code": code,
        "code_digest": digest,
        "expires_at": "2099-01-01T00:00:00+00:00",
        "issuer": "admin",
        "issuer_key_id": admin_key.key_id,
        "issuer_signature": mine.sign(enrol_statement(B, "apr", digest, "2099-01-01T00:00:00+00:00", True))[
            "signature"
        ],
        "possession": mine.sign(possession_statement(B, "apr", mine.key_id, digest))["signature"],
    }
    # a second root: a creation event sealed with the node key at the roster stream's next version
    head = app.signed_store.head(roster.id)
    assert head is not None
    opened = "ledger.domain.roster:StaffRoster.Opened"
    root = dict(cert, issuer="system", issuer_key_id=None, issuer_signature=None)
    raw = forge(app, B, opened, roster.id, head[0] + 1, {"agency": B, "root": root})
    second = ingest(c.app, raw, PendingStore(c.app, c.engine))
    assert second.kind == "parked" and second.code == "staff_signature" and "second roster root" in second.reason
    roster.certify(cert=cert)  # the event itself: the roster check is what the shell user skips
    app.save_as(B, roster)
    assert mine.key_id not in app.roster(B).keys  # type: ignore[union-attr]
    rid = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    statement = act_statement(B, APPROVED, str(rid), app.flag_request(rid).digest(), "apr", note_digest(""))
    proof = StaffProof(mine.key_id, mine.sign(statement)["signature"])
    with pytest.raises(PermissionDenied) as refused:
        app.approve_request(Actor(B, "apr"), rid, proof=proof)
    assert refused.value.code == "staff_signature"
    # through the app: a root code written with the node key for apr, then activated: refused
    cred = app.load(StaffCredential, app.credential_id(B, "apr"), "credential")
    rooted = secrets.token_urlsafe(24)
    issued = {"code_digest": code_digest(rooted), "expires_at": "2099-01-01T00:00:00+00:00", "issuer": "system"}
    cred.issue_code({**issued, "certifies": True, "issuer_key_id": None, "issuer_signature": None})
    app.save_as(B, cred)
    with pytest.raises(IntegrityError) as second_root:
        app.activate_credential(B, "apr", rooted, "a-password-the-shell-user-chose")
    assert second_root.value.code == "staff_signature" and "second is refused" in str(second_root.value)
    refused_at_peer = deliver(b, c, start)
    assert refused_at_peer["StaffRoster.KeyCertified"].code == "staff_signature"
    assert "issuing administrator" in refused_at_peer["StaffRoster.KeyCertified"].reason
    head = app.signed_store.head(roster.id)
    assert head is not None
    raw = forge(app, B, opened, roster.id, head[0] + 1, {"agency": B, "root": root})
    app.recorder.insert_events([StoredEvent(roster.id, head[0] + 1, opened, app.signed_mapper.protect(raw))])
    assert mine.key_id not in app.roster(B).keys  # type: ignore[union-attr]
    report = verify_log(app, workers=1)
    named = [f.reason for f in report.staff_findings]
    assert any("issuing administrator" in r for r in named) and any("second roster root" in r for r in named)


def test_a_peer_cannot_borrow_another_agencys_staff_signatures(pair: tuple[Node, Node]) -> None:
    """Threat: a peer agency (C) sets flags on its own stream with evidence copied from B's genuine flag change,
    or with no staff signatures at all: B's node parks both."""
    b, c = pair
    x = individual_number()
    rid = b.app.request_flags(Actor(B, "req"), x, FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    deliver(b, c)
    deliver(c, b)
    start = c.app.max_position()
    subject = c.app.subject(x)
    pid = c.app.ids.protection(C, subject)
    protection = Protection(id=pid, agency=C, subject=subject)
    protection._set(
        agency=C, subject=subject, flags=FLAGS, request_id=rid, by="op", reason="dv", review_date="2099-01-01",
        evidence=b.app.flag_request(rid).evidence(),
    )  # fmt: skip
    c.app.save_as(C, protection)
    unsigned_subject = c.app.subject(individual_number())  # and one with no staff signatures at all
    unsigned = Protection(id=c.app.ids.protection(C, unsigned_subject), agency=C, subject=unsigned_subject)
    unsigned.set_flags(FLAGS, uuid4(), "op", "dv", "2099-01-01")
    c.app.save_as(C, unsigned)
    outcomes = [
        (Envelope.from_bytes(raw).header.topic, ingest(b.app, raw, PendingStore(b.app, b.engine)))
        for _, _, raw in publishable(c.app, start)
    ]
    refused = [(t, o) for t, o in outcomes if t.endswith("FlagsSet")]
    assert [o.code for _, o in refused] == ["staff_signature", "staff_signature"]
    assert "not certified" in refused[0][1].reason and "carries no staff signatures" in refused[1][1].reason
    assert b.app.flag_state is None or C not in str(b.app.flag_state.flags_for(subject))


def test_wrong_passwords_are_recorded_and_lock_the_credential(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user (or a colleague) guessing a staff member's password: each failure is an event,
    five lock the credential for 15 minutes even against the right password."""
    b, _ = pair
    app = b.app
    for _ in range(4):
        with pytest.raises(AuthError) as wrong:
            app.unlock(B, "apr", "not-the-password-at-all")
        assert wrong.value.code == "wrong_password"
    cred = app.load(StaffCredential, app.credential_id(B, "apr"), "credential")
    assert cred.failures == 4
    with pytest.raises(AuthError):
        app.unlock(B, "apr", "not-the-password-at-all")
    with pytest.raises(AuthError) as locked:
        app.unlock(B, "apr", password_of(B, "apr"))
    assert locked.value.code == "locked_out"
    topics = [env.header.topic for _, _, env in app.envelopes(start=1)]
    assert topics.count("ledger.domain.credentials:StaffCredential.UnlockFailed") == 5


def test_without_an_unlocked_key_no_act_is_signed(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user running the CLI as another person (``--as``): nothing is signed without the key."""
    b, _ = pair
    b.app.lock(B, "req")
    with pytest.raises(PermissionDenied) as refused:
        b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    assert refused.value.code == "staff_signature_required"
    b.app.unlock(B, "req", password_of(B, "req"))
    assert b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)


def test_a_deactivated_persons_key_is_revoked(pair: tuple[Node, Node]) -> None:
    """Threat: a departed staff member (or whoever has their password) keeps signing."""
    b, _ = pair
    rid = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    b.app.deactivate_staff(Actor(B, "admin"), "apr")
    roster = b.app.roster(B)
    assert roster is not None and roster.current_key("apr") is None
    with pytest.raises(PermissionDenied):
        b.app.approve_request(Actor(B, "apr"), rid)


def test_batched_ingest_applies_a_roster_and_the_flags_it_signs_and_parks_a_forgery(pair: tuple[Node, Node]) -> None:
    """Threat: a shell user's forged flag change arriving in one Kafka batch with genuine roster events and flag
    changes (``ingest_many``): the roster certified earlier in the batch counts, the forgery is parked."""
    b, c = pair
    app = b.app
    rid = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    forged = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    forge_execution(b, forged, [])  # no approval, no operator's signature
    raws = [raw for _, _, raw in publishable(app, 0)]
    outcomes = ingest_many(c.app, raws, PendingStore(c.app, c.engine))
    topics = [Envelope.from_bytes(raw).header.topic.rsplit(":", 1)[1] for raw in raws]
    kinds = [(t, o.kind, o.code) for t, o in zip(topics, outcomes, strict=True)]
    flags_set = [v for v in kinds if v[0] == "Protection.FlagsSet"]
    assert flags_set == [("Protection.FlagsSet", "applied", ""), ("Protection.FlagsSet", "parked", "staff_signature")]
    assert all(kind == "applied" for t, kind, _ in kinds if t.startswith("StaffRoster."))


def test_a_password_change_rewraps_the_same_key_and_the_old_password_no_longer_opens_it(
    pair: tuple[Node, Node],
) -> None:
    """Threat: whoever learnt a staff member's old password (shoulder-surfing, a note): after the change it
    opens nothing; the person keeps their certified key."""
    b, _ = pair
    app = b.app
    before = app.roster(B).current_key("apr")  # type: ignore[union-attr]
    new = "a-new-and-longer-password-for-apr"
    app.change_password(B, "apr", password_of(B, "apr"), new)
    with pytest.raises(AuthError) as wrong:
        app.unlock(B, "apr", password_of(B, "apr"))
    assert wrong.value.code == "wrong_password"
    assert app.unlock(B, "apr", new).key_id == before.key_id  # type: ignore[union-attr]
    with pytest.raises(InputError):
        app.change_password(B, "apr", new, "short")


def test_a_served_node_signs_only_for_a_person_who_unlocked_their_key_there(pair: tuple[Node, Node]) -> None:
    """Threat: whoever holds a staff member's API token (or the server's secrets) approving as them: the
    server signs only with a key that person unlocked with their password; a wrong one is 401 and recorded."""
    b, _ = pair
    app, api = b.app, client(b)
    rid = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    headers = auth(b, B, "apr")  # apr's token (signing in unlocks the key in that process) …
    app.lock(B, "apr")  # … in a server process where apr's key is not (or no longer) unlocked
    refused = api.post(f"/api/v1/flag-requests/{rid}/approve", json={}, headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "staff_signature_required"
    wrong = api.post("/api/v1/staff-key/unlock", json={"password": "not apr's"}, headers=headers)
    assert wrong.status_code == 401 and wrong.json()["code"] == "wrong_password"
    unlocked = api.post("/api/v1/staff-key/unlock", json={"password": password_of(B, "apr")}, headers=headers)
    assert unlocked.status_code == 200 and unlocked.json()["staff"] == f"{B}/apr"
    assert api.post(f"/api/v1/flag-requests/{rid}/approve", json={}, headers=headers).json()["status"] == "approved"
    assert api.post("/api/v1/staff-key/lock", headers=headers).status_code == 204
    with pytest.raises(PermissionDenied):
        app.signer_for(Actor(B, "apr"))
