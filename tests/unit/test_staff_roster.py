"""The staff roster's fold and the evidence check (ledger/log/staff_roster.py), on hand-made certificates.

Threat: a shell user holding every secret of the node but no staff key, and a peer agency: each certificate
below is one they can write with a node key; the roster must certify nothing of it.
"""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REQUESTED,
    act_statement,
    code_digest,
    details_digest,
    enrol_statement,
    note_digest,
    possession_statement,
    request_digest,
    staff_key_id,
)
from ledger.log.staff_roster import RosterState, check_evidence

B = "131024"
EXPIRES = "2099-01-01T00:00:00+00:00"


class Person:
    def __init__(self, staff: str) -> None:
        self.staff, self.key = staff, Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex, self.key_id = raw.hex(), staff_key_id(B, raw)

    def sign(self, message: bytes) -> str:
        return self.key.sign(message).hex()


def cert(person: Person, issuer: Person | None, *, certifies: bool = False, code: str | None = None) -> dict[str, Any]:
    code = code or secrets.token_urlsafe(24)
    digest = code_digest(code)
    return {
        "staff": person.staff,
        "key_id": person.key_id,
        "public_hex": person.public_hex,
        "certifies": certifies if issuer is not None else True,
        "code": code,
        "code_digest": digest,
        "expires_at": EXPIRES,
        "issuer": issuer.staff if issuer is not None else "system",
        "issuer_key_id": issuer.key_id if issuer is not None else None,
        "issuer_signature": issuer.sign(enrol_statement(B, person.staff, digest, EXPIRES, certifies))
        if issuer is not None
        else None,
        "possession": person.sign(possession_statement(B, person.staff, person.key_id, digest)),
    }


def rooted() -> tuple[RosterState, Person]:
    admin, roster = Person("admin"), RosterState(B)
    assert roster.apply("Opened", {"root": cert(admin, None)}) is None
    return roster, admin


def test_a_key_is_certified_by_an_administrators_signature_and_its_own_proof_of_possession() -> None:
    roster, admin = rooted()
    apr = Person("apr")
    assert roster.apply("KeyCertified", {"cert": cert(apr, admin)}) is None
    assert roster.current_key("apr") is not None


def test_what_a_node_key_alone_can_write_certifies_nothing() -> None:
    roster, admin = rooted()
    mine, apr = Person("apr"), Person("apr")
    forged = cert(mine, mine)  # "issued" by a key of the shell user's own
    forged["issuer"], forged["issuer_key_id"] = "admin", admin.key_id
    assert "issuing administrator" in str(roster.apply("KeyCertified", {"cert": forged}))
    no_proof = cert(apr, admin)
    no_proof["possession"] = mine.sign(possession_statement(B, "apr", apr.key_id, no_proof["code_digest"]))
    assert "proof of possession" in str(roster.apply("KeyCertified", {"cert": no_proof}))
    wrong_code = cert(apr, admin)
    wrong_code["code"] = secrets.token_urlsafe(24)  # the shell user sees only the digest, never the code
    assert "does not match its digest" in str(roster.apply("KeyCertified", {"cert": wrong_code}))
    assert "second roster root" in str(roster.apply("Opened", {"root": cert(mine, None)}))
    assert roster.current_key("apr") is None and len(roster.keys) == 1


def test_a_code_certifies_once_and_only_an_administrator_certifies() -> None:
    roster, admin = rooted()
    apr, again, clerk, other = Person("apr"), Person("apr"), Person("counter"), Person("op")
    code = secrets.token_urlsafe(24)
    assert roster.apply("KeyCertified", {"cert": cert(apr, admin, code=code)}) is None
    assert "already used" in str(roster.apply("KeyCertified", {"cert": cert(again, admin, code=code)}))
    assert roster.apply("KeyCertified", {"cert": cert(clerk, admin, certifies=False)}) is None
    assert "not a certified administrator key" in str(roster.apply("KeyCertified", {"cert": cert(other, clerk)}))
    assert roster.apply("KeyRevoked", {"staff": "admin", "key_id": admin.key_id}) is None
    assert "not a certified administrator key" in str(roster.apply("KeyCertified", {"cert": cert(other, admin)}))


ACTS = ((REQUESTED, "req"), (APPROVED, "apr"), (EXECUTED, "op"))


def evidence(people: dict[str, Person], rid: str, flags: list[str], acts=ACTS) -> dict[str, Any]:
    details = details_digest("dv", "", None, None)
    digest = request_digest(B, rid, "set", "p" + "0" * 32, flags, "2099-01-01", 1, details)
    out = []
    for act, who in acts:
        note = note_digest("")
        signature = people[who].sign(act_statement(B, act, rid, digest, who, note))
        out.append({"act": act, "staff": who, "note": note, "key_id": people[who].key_id, "signature": signature})
    return {"approvals_required": 1, "details": details, "acts": out}


def test_evidence_binds_people_to_these_flags_on_this_subject_and_this_request() -> None:
    roster, admin = rooted()
    people = {who: Person(who) for who in ("req", "apr", "op")}
    for p in people.values():
        assert roster.apply("KeyCertified", {"cert": cert(p, admin)}) is None
    rid, flags = "6f1c2a8e-0000-4000-8000-000000000001", ["NON_DISCLOSURE"]
    payload = {
        "agency": B,
        "subject": "p" + "0" * 32,
        "flags": flags,
        "request_id": rid,
        "by": "op",
        "review_date": "2099-01-01",
        "evidence": evidence(people, rid, flags),
    }
    assert check_evidence(roster, "FlagsSet", payload) is None
    assert "does not verify" in str(check_evidence(roster, "FlagsSet", {**payload, "flags": ["NO_AUTO_RESPONSE"]}))
    assert "does not verify" in str(check_evidence(roster, "FlagsSet", {**payload, "subject": "p" + "1" * 32}))
    other = "6f1c2a8e-0000-4000-8000-000000000002"  # the same signatures replayed on another request
    assert "does not verify" in str(check_evidence(roster, "FlagsSet", {**payload, "request_id": other}))
    assert "did not sign the execution" in str(check_evidence(roster, "FlagsSet", {**payload, "by": "req"}))
    self_approved = evidence(people, rid, flags, ((REQUESTED, "req"), (APPROVED, "req"), (EXECUTED, "op")))
    assert "approved their own request" in str(
        check_evidence(roster, "FlagsSet", {**payload, "evidence": self_approved})
    )
    unapproved = evidence(people, rid, flags, ((REQUESTED, "req"), (EXECUTED, "op")))
    assert "approver" in str(check_evidence(roster, "FlagsSet", {**payload, "evidence": unapproved}))
    assert "carries no staff signatures" in str(check_evidence(roster, "FlagsSet", {**payload, "evidence": None}))
    roster.apply("KeyRevoked", {"staff": "apr", "key_id": people["apr"].key_id})
    assert "revoked" in str(check_evidence(roster, "FlagsSet", payload))
