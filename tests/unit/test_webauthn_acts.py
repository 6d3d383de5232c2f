"""A security key's assertion as a staff member's signature on one act (ledger/log/webauthn_proof.py, the
roster's ``SecurityKeyCertified`` in ledger/log/staff_roster.py), with a software authenticator that builds
authenticatorData and clientDataJSON as a browser does (tests/support/soft_authenticator.py).

Threats: a shell user holding every secret of the node but no staff key (certifies a key of their own, or
replays an assertion onto another act), a peer agency (sends such events as its own), and the network or a
phishing site (an assertion made for another relying party).
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REQUESTED,
    act_statement,
    details_digest,
    note_digest,
    request_digest,
    security_key_statement,
)
from ledger.log.staff_roster import RosterState, check_acts, check_evidence
from ledger.log.webauthn_proof import b64url, check_assertion, cose_algorithm, unb64url
from tests.support.soft_authenticator import SoftAuthenticator
from tests.unit.test_staff_roster import B, Person, cert, evidence, rooted

RP = hashlib.sha256(b"testserver").hexdigest()
RID = "6f1c2a8e-0000-4000-8000-0000000000a1"
DIGEST = "d" * 64


def key_cert(person: Person, key: SoftAuthenticator, key_id: str, *, by: Person | None = None) -> dict[str, Any]:
    """``person``'s security key certified by ``by``'s staff key (``person``'s own unless said otherwise)."""
    signer = by or person
    statement = security_key_statement(B, person.staff, key_id, key.credential, key.cose_key, RP)
    return {
        "staff": person.staff,
        "key_id": key_id,
        "credential": key.credential,
        "cose_key": key.cose_key,
        "rp_id_hash": RP,
        "certified_by": signer.key_id,
        "signature": signer.sign(statement),
    }


def with_key(alg: str = "ES256") -> tuple[RosterState, Person, SoftAuthenticator, str]:
    roster, admin = rooted()
    apr, key, key_id = Person("apr"), SoftAuthenticator(alg), f"{B}:{'a1' * 8}"
    assert roster.apply("KeyCertified", {"cert": cert(apr, admin)}) is None
    assert roster.apply("SecurityKeyCertified", {"security_key": key_cert(apr, key, key_id)}) is None
    return roster, apr, key, key_id


def approval(key: SoftAuthenticator, key_id: str, statement: bytes | None = None, **kw: Any) -> dict[str, Any]:
    mine = act_statement(B, APPROVED, RID, DIGEST, "apr", note_digest(""))
    signed = key.sign_statement(statement or mine, **kw)
    return {"act": APPROVED, "staff": "apr", "note": note_digest(""), "key_id": key_id, **signed}


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_a_certified_keys_assertion_over_the_acts_statement_is_its_signature(alg: str) -> None:
    """The good case, for the two algorithms browsers' authenticators (and Chromium's virtual one) make."""
    roster, _, key, key_id = with_key(alg)
    assert cose_algorithm(key.cose_key) == alg
    assert check_acts(roster, RID, DIGEST, [approval(key, key_id)]) is None
    assert check_acts(roster, RID, DIGEST, [approval(key, key_id, flags=0x01)]) is None, "UV is preferred, not required"


def test_an_assertion_over_another_statement_is_refused() -> None:
    """Threat: a shell user replays a real assertion onto another request or another act."""
    roster, _, key, key_id = with_key()
    other_request = act_statement(B, APPROVED, RID.replace("a1", "a2"), DIGEST, "apr", note_digest(""))
    other_act = act_statement(B, EXECUTED, RID, DIGEST, "apr", note_digest(""))
    for statement in (other_request, other_act):
        problem = check_acts(roster, RID, DIGEST, [approval(key, key_id, statement)])
        assert problem is not None and "another statement" in problem
    good = approval(key, key_id)
    assert "another statement" in str(check_acts(roster, RID, "e" * 64, [good])), "same act, another request digest"


def test_wrong_relying_party_user_absent_or_a_registration_is_refused() -> None:
    """Threat: an assertion a phishing site obtained (another rpIdHash), one made without a touch (UP flag off),
    or a registration's client data passed off as an assertion."""
    roster, _, key, key_id = with_key()
    assert "relying party" in str(check_acts(roster, RID, DIGEST, [approval(key, key_id, rp_id="evil.example")]))
    assert "user-present" in str(check_acts(roster, RID, DIGEST, [approval(key, key_id, flags=0x04)]))
    assert "webauthn.get" in str(check_acts(roster, RID, DIGEST, [approval(key, key_id, kind="webauthn.create")]))


def test_a_signature_by_another_key_or_a_tampered_assertion_does_not_verify() -> None:
    """Threat: a shell user signs with an authenticator of their own under apr's certified key id, or edits
    the authenticator data (turning the UP flag on) of a real assertion."""
    roster, _, key, key_id = with_key()
    mine = SoftAuthenticator()
    assert "does not verify" in str(check_acts(roster, RID, DIGEST, [approval(mine, key_id)]))
    absent = approval(key, key_id, flags=0x00)
    raw = bytearray(hashlib.sha256(b"testserver").digest() + b"\x01" + bytes(4))
    raw[33:37] = key.counter.to_bytes(4, "big")
    absent["authenticator_data"] = b64url(bytes(raw))
    assert "does not verify" in str(check_acts(roster, RID, DIGEST, [absent]))
    ed25519 = {**approval(key, key_id), "signature": "00" * 64}
    del ed25519["authenticator_data"], ed25519["client_data"]
    assert "carries none" in str(check_acts(roster, RID, DIGEST, [ed25519])), "a bare signature is not an assertion"


def test_an_uncertified_or_revoked_key_signs_nothing() -> None:
    """Threat: an administrator or shell user; a removed (lost) key, and the keys a replaced staff key
    certified, end from that point of the log on."""
    roster, _, key, key_id = with_key()
    stranger = SoftAuthenticator()
    assert "not certified" in str(check_acts(roster, RID, DIGEST, [approval(stranger, f"{B}:{'b2' * 8}")]))
    assert roster.apply("KeyRevoked", {"staff": "apr", "key_id": key_id}) is None
    assert "revoked" in str(check_acts(roster, RID, DIGEST, [approval(key, key_id)]))
    roster2, apr2, key2, key_id2 = with_key()  # apr's staff key replaced (a new enrolment) or deactivated
    assert roster2.apply("KeyRevoked", {"staff": "apr", "key_id": apr2.key_id}) is None
    assert "revoked" in str(check_acts(roster2, RID, DIGEST, [approval(key2, key_id2)])), "with the staff key"
    assert roster2.security_keys("apr") == []


def test_a_certification_without_the_persons_own_staff_key_signature_certifies_nothing() -> None:
    """Threat: a shell user writes SecurityKeyCertified with the node key for a key of their own — signed by
    nobody, by a key of their own, by another person's certified key, or by apr's revoked key."""
    roster, admin = rooted()
    apr, req = Person("apr"), Person("req")
    for p in (apr, req):
        assert roster.apply("KeyCertified", {"cert": cert(p, admin)}) is None
    mine = SoftAuthenticator()
    forged = key_cert(apr, mine, f"{B}:{'c3' * 8}")
    forged["signature"] = "00" * 64
    assert "does not verify" in str(roster.apply("SecurityKeyCertified", {"security_key": forged}))
    own = key_cert(apr, mine, f"{B}:{'c3' * 8}", by=Person("apr"))  # a staff key nobody certified
    assert "not certified by a staff key" in str(roster.apply("SecurityKeyCertified", {"security_key": own}))
    borrowed = key_cert(apr, mine, f"{B}:{'c3' * 8}", by=req)  # req's real key, certifying for apr
    assert "not certified by a staff key" in str(roster.apply("SecurityKeyCertified", {"security_key": borrowed}))
    edited = key_cert(apr, SoftAuthenticator(), f"{B}:{'c3' * 8}")
    edited["cose_key"] = mine.cose_key  # apr's real certification, the public key swapped for the shell user's
    assert "does not verify" in str(roster.apply("SecurityKeyCertified", {"security_key": edited}))
    assert roster.security_keys("apr") == []
    assert roster.apply("KeyRevoked", {"staff": "apr", "key_id": apr.key_id}) is None
    late = key_cert(apr, mine, f"{B}:{'c4' * 8}")
    assert "not certified by a staff key" in str(roster.apply("SecurityKeyCertified", {"security_key": late}))


def test_a_key_of_an_algorithm_not_accepted_or_a_malformed_cose_key_is_not_certified() -> None:
    """Threat: a peer agency sends a roster event that would break every reader's check (bad input)."""
    roster, apr, key, _ = with_key()
    bad_alg = cbor2.dumps({1: 2, 3: -35, -1: 2, -2: bytes(48), -3: bytes(48)})  # ES384: not accepted here
    for cose in (b64url(bad_alg), b64url(b"\xa1\x01"), "not base64!"):
        k = key_cert(apr, key, f"{B}:{'d5' * 8}")
        k["cose_key"] = cose
        k["signature"] = apr.sign(security_key_statement(B, "apr", k["key_id"], key.credential, cose, RP))
        assert "not accepted" in str(roster.apply("SecurityKeyCertified", {"security_key": k}))


def test_evidence_mixes_staff_keys_and_security_keys_and_binds_each_to_its_act() -> None:
    """The CLI's Ed25519 signatures stay valid beside console assertions in one flag change's evidence."""
    roster, admin = rooted()
    people = {who: Person(who) for who in ("req", "apr", "op")}
    for p in people.values():
        assert roster.apply("KeyCertified", {"cert": cert(p, admin)}) is None
    key, key_id = SoftAuthenticator(), f"{B}:{'e6' * 8}"
    assert roster.apply("SecurityKeyCertified", {"security_key": key_cert(people["apr"], key, key_id)}) is None
    rid, flags = "6f1c2a8e-0000-4000-8000-000000000001", ["NON_DISCLOSURE"]
    ev = evidence(people, rid, flags)
    approved = next(a for a in ev["acts"] if a["act"] == APPROVED)
    digest_statement = act_statement(B, APPROVED, rid, _digest(rid, flags), "apr", note_digest(""))
    approved.update(key_id=key_id, **key.sign_statement(digest_statement))
    payload = {
        "agency": B,
        "subject": "p" + "0" * 32,
        "flags": flags,
        "request_id": rid,
        "by": "op",
        "review_date": "2099-01-01",
        "evidence": ev,
    }
    assert check_evidence(roster, "FlagsSet", payload) is None
    other = _digest(rid, ["NO_AUTO_RESPONSE"])  # the approval carried onto a request for other flags
    assert "another statement" in str(check_acts(roster, rid, other, [approved]))
    assert [a["act"] for a in ev["acts"]] == [REQUESTED, APPROVED, EXECUTED]


def _digest(rid: str, flags: list[str]) -> str:
    return request_digest(B, rid, "set", "p" + "0" * 32, flags, "2099-01-01", 1, details_digest("dv", "", None, None))


def test_check_assertion_refuses_malformed_input_without_raising() -> None:
    """Threat: a peer agency's malformed evidence must park, not crash ingest."""
    key = SoftAuthenticator()
    statement = b"s"
    good = key.sign_statement(statement)
    assert check_assertion(key.cose_key, RP, statement, **good) is None
    for field, value in (("authenticator_data", "!!"), ("client_data", b64url(b"{")), ("signature", "zz")):
        assert "malformed" in str(check_assertion(key.cose_key, RP, statement, **{**good, field: value}))
    assert "malformed" in str(check_assertion(key.cose_key, RP, statement, **{**good, "authenticator_data": "AA"}))


def test_an_rs256_key_as_windows_hello_makes_one_verifies_and_a_short_rsa_key_is_not_accepted() -> None:
    """Platform authenticators on municipal PCs (Windows Hello) sign with RS256; a peer's RSA key under 2048
    bits (threat: a peer agency or a shell user choosing a factorable key) is refused at certification."""

    def cose(key: rsa.RSAPrivateKey) -> str:
        n = key.public_key().public_numbers()
        return b64url(cbor2.dumps({1: 3, 3: -257, -1: n.n.to_bytes(key.key_size // 8, "big"), -2: b"\x01\x00\x01"}))

    strong, weak = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 1024)
    assert cose_algorithm(cose(strong)) == "RS256"
    with pytest.raises(ValueError, match="2048"):
        cose_algorithm(cose(weak))
    statement = b"an act"
    soft = SoftAuthenticator()
    good = soft.sign_statement(statement)
    auth_data, client_data = good["authenticator_data"], good["client_data"]
    signed = unb64url(auth_data) + hashlib.sha256(unb64url(client_data)).digest()
    signature = strong.sign(signed, padding.PKCS1v15(), hashes.SHA256()).hex()
    assert check_assertion(cose(strong), RP, statement, auth_data, client_data, signature) is None
    forged = weak.sign(signed, padding.PKCS1v15(), hashes.SHA256()).hex()
    assert "does not verify" in str(check_assertion(cose(strong), RP, statement, auth_data, client_data, forged))
