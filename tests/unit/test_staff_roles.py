"""Roles at peers: the roster's role certifications and the check that each act's signer held its role
(ledger/log/staff_roster.py ``RoleCertified`` / ``RolesWithdrawn``, ledger/log/staff_roles.py), on hand-made
roster events.

Threat: an administrator or shell user (one administrator's signature, or none, making a role a peer counts;
an old grant replayed after its withdrawal; an administrator taking a duty role), and a peer agency (a role
certified by another agency's administrator who is not the prefecture's).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.domain.staff_acts import (
    APPROVED,
    APPROVED_ROLE,
    EXECUTED,
    PROPOSED_ROLE,
    REJECTED,
    REQUESTED,
    co_approval_statement,
    code_digest,
    enrol_statement,
    grant_digest,
    note_digest,
    possession_statement,
    role_statement,
    staff_key_id,
)
from ledger.log.staff_roles import act_role_problem, check_roles, decision_role_problem
from ledger.log.staff_roster import RosterState

B, P, OSAKA = "131024", "130001", "270008"
EXPIRES = "2099-01-01T00:00:00+00:00"


class Person:
    def __init__(self, agency: str, staff: str) -> None:
        self.agency, self.staff, self.key = agency, staff, Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex, self.key_id = raw.hex(), staff_key_id(agency, raw)

    def sign(self, message: bytes) -> str:
        return self.key.sign(message).hex()


def cert(person: Person, issuer: Person | None, *, certifies: bool = False, roles: bool = True) -> dict[str, Any]:
    code = secrets.token_urlsafe(24)
    digest, agency = code_digest(code), person.agency
    out = {
        "staff": person.staff, "key_id": person.key_id, "public_hex": person.public_hex,
        "certifies": certifies if issuer is not None else True, "code": code, "code_digest": digest,
        "expires_at": EXPIRES, "issuer": issuer.staff if issuer is not None else "system",
        "issuer_key_id": issuer.key_id if issuer is not None else None,
        "issuer_signature": issuer.sign(enrol_statement(agency, person.staff, digest, EXPIRES, certifies))
        if issuer is not None else None,
        "possession": person.sign(possession_statement(agency, person.staff, person.key_id, digest)),
    }  # fmt: skip
    if issuer is None and roles:
        out["roles"] = ["administrator"]
        out["set_up_administrators"] = [person.staff, "admin2"]  # as `init --second-admin admin2` names them
    return out


def agency(code: str, *staff: str, roles: bool = True) -> tuple[RosterState, dict[str, Person]]:
    """A roster of ``code``: its root ``admin``, a second administrator ``admin2`` and ``staff`` with keys."""
    people = {who: Person(code, who) for who in ("admin", "admin2", *staff)}
    roster = RosterState(code)
    assert roster.apply("Opened", {"root": cert(people["admin"], None, roles=roles)}) is None
    assert roster.apply("KeyCertified", {"cert": cert(people["admin2"], people["admin"], certifies=True)}) is None
    for who in staff:
        assert roster.apply("KeyCertified", {"cert": cert(people[who], people["admin"])}) is None
    return roster, people


def signed(by: Person, act: str, digest: str) -> dict[str, str]:
    return {"staff": by.staff, "key_id": by.key_id, "signature": by.sign(role_statement(act, digest))}


def grant(
    proposer: Person, who: str, role: str, approver: Person | None = None, gid: str | None = None
) -> dict[str, Any]:
    """A ``RoleCertified`` payload: ``proposer``'s signature, and ``approver``'s if given."""
    gid = gid or str(uuid.uuid4())
    digest = grant_digest(proposer.agency, gid, who, role, proposer.staff)
    return {
        "certified": {
            "staff": who, "role": role, "grant": gid, "proposed_by": proposer.staff,
            "proposal": signed(proposer, PROPOSED_ROLE, digest),
            "approval": None if approver is None else signed(approver, APPROVED_ROLE, digest),
            "co_approval": None,
        }
    }  # fmt: skip


def test_a_privileged_role_takes_two_administrators_signatures_and_requester_one() -> None:
    """Threat: an administrator alone making an approver a peer counts."""
    roster, people = agency(B, "apr", "req")
    admin, admin2 = people["admin"], people["admin2"]
    alone = roster.apply("RoleCertified", grant(admin, "apr", "approver"))
    assert alone is not None and "second administrator" in alone
    assert not roster.holds("apr", "approver")
    same_twice = roster.apply("RoleCertified", grant(admin, "apr", "approver", approver=admin))
    assert same_twice is not None and "second administrator" in same_twice
    assert roster.apply("RoleCertified", grant(admin, "apr", "approver", approver=admin2)) is None
    assert roster.holds("apr", "approver")
    assert roster.apply("RoleCertified", grant(admin, "req", "requester")) is None  # one step: one signature
    assert roster.holds("req", "requester")


def test_only_administrators_keys_sign_a_grant_and_only_for_that_grant() -> None:
    """Threat: a shell user signing with a key of their own, or a clerk's, or replaying a grant's signatures."""
    roster, people = agency(B, "apr", "clerk")
    admin, clerk = people["admin"], people["clerk"]
    by_clerk = roster.apply("RoleCertified", grant(admin, "apr", "approver", approver=clerk))
    assert by_clerk is not None and "not an administrator" in by_clerk
    mine = Person(B, "admin2")  # a key the shell user made, named as admin2's
    by_mine = roster.apply("RoleCertified", grant(admin, "apr", "approver", approver=mine))
    assert by_mine is not None and "not a staff key certified" in by_mine
    moved = grant(admin, "apr", "approver", approver=people["admin2"])
    moved["certified"]["role"] = "operator"  # the signatures were over approver
    problem = roster.apply("RoleCertified", moved)
    assert problem is not None and "does not verify" in problem
    assert not roster.holds("apr", "approver") and not roster.holds("apr", "operator")


def test_a_stand_in_administrator_needs_two_administrators_not_one_enrolment_code() -> None:
    """Threat: an administrator with the node's shell enrolling a stand-in administrator ("sock") with their
    own signature alone, then certifying duty roles with it as the "second" administrator."""
    roster, people = agency(B, "apr")
    admin, admin2 = people["admin"], people["admin2"]
    sock = Person(B, "sock")
    alone = roster.apply("KeyCertified", {"cert": cert(sock, admin, certifies=True)})
    assert alone is not None and "two administrators" in alone
    assert not roster.holds("sock", "administrator") and sock.key_id not in roster.keys
    stand_in = roster.apply("RoleCertified", grant(admin, "apr", "approver", approver=sock))
    assert stand_in is not None and not roster.holds("apr", "approver")
    # the same person, made an administrator by two administrators first, then enrolled: accepted
    assert roster.apply("RoleCertified", grant(admin, "sock", "administrator", approver=admin2)) is None
    assert roster.apply("KeyCertified", {"cert": cert(sock, admin, certifies=True)}) is None
    assert roster.holds("sock", "administrator")


def test_set_up_names_the_root_and_at_most_one_other_administrator() -> None:
    """Threat: a node's set-up naming a crowd of administrators, each then certified by one signature."""
    root = cert(Person(B, "admin"), None)
    root["set_up_administrators"] = ["admin", "admin2", "sock"]
    problem = RosterState(B).apply("Opened", {"root": root})
    assert problem is not None and "at most one other" in problem
    without_root = cert(Person(B, "admin"), None)
    without_root["set_up_administrators"] = ["admin2"]
    assert RosterState(B).apply("Opened", {"root": without_root}) is not None


def test_a_withdrawn_role_is_not_restored_by_replaying_its_grant() -> None:
    """Threat: a shell user re-sending the RoleCertified of a role an administrator revoked."""
    roster, people = agency(B, "apr")
    certified = grant(people["admin"], "apr", "approver", approver=people["admin2"])
    assert roster.apply("RoleCertified", certified) is None
    assert roster.apply("RolesWithdrawn", {"staff": "apr", "roles": ["approver"], "reason": "r", "by": "admin"}) is None
    assert not roster.holds("apr", "approver")
    replay = roster.apply("RoleCertified", certified)
    assert replay is not None and "already certified" in replay
    assert act_role_problem(roster, APPROVED, "apr") is not None


def test_an_administrator_never_holds_a_duty_role_nor_acts_with_one() -> None:
    """Threat: an administrator granting themselves (or a fellow administrator) approver."""
    roster, people = agency(B)
    admin, admin2 = people["admin"], people["admin2"]
    own = roster.apply("RoleCertified", grant(admin, "admin", "approver", approver=admin2))
    assert own is not None and "themselves" in own
    admin3 = Person(B, "admin3")
    assert roster.apply("RoleCertified", grant(admin, "admin3", "administrator", approver=admin2)) is None
    assert roster.apply("KeyCertified", {"cert": cert(admin3, admin, certifies=True)}) is None
    fellow = roster.apply("RoleCertified", grant(admin, "admin2", "approver", approver=admin3))
    assert fellow is not None and "separation of duties" in fellow  # admin2 is an administrator
    assert not roster.holds("admin2", "approver")
    assert "administrator may not" in str(act_role_problem(roster, APPROVED, "admin2"))


def test_each_act_needs_its_role_at_that_point_of_the_roster() -> None:
    """Threat: a peer's flag change approved by a certified person who never held approver."""
    roster, people = agency(B, "req", "apr", "op", "clerk")
    admin, admin2 = people["admin"], people["admin2"]
    for who, role in (("req", "requester"), ("apr", "approver"), ("op", "operator")):
        approver = None if role == "requester" else admin2
        assert roster.apply("RoleCertified", grant(admin, who, role, approver=approver)) is None
    acts = [{"act": a, "staff": s} for a, s in ((REQUESTED, "req"), (APPROVED, "apr"), (EXECUTED, "op"))]
    assert check_roles(roster, {"evidence": {"acts": acts}}) is None
    by_clerk = [*acts[:1], {"act": APPROVED, "staff": "clerk"}, acts[2]]
    problem = check_roles(roster, {"evidence": {"acts": by_clerk}})
    assert problem is not None and "clerk does not hold approver" in problem
    assert act_role_problem(roster, REJECTED, "apr") is None and act_role_problem(roster, REJECTED, "req")
    assert act_role_problem(roster, EXECUTED, "apr") is not None
    # an emergency flag: one operator requests and executes it
    assert act_role_problem(roster, REQUESTED, "op", provisional=True) is None
    assert act_role_problem(roster, REQUESTED, "op") is not None


def test_a_roster_opened_before_roles_travelled_records_none_and_checks_none() -> None:
    """The old-log case: ``audit verify`` lists such flag changes as before staff roles (not verified)."""
    roster, _ = agency(B, "apr", roles=False)
    assert not roster.roles_recorded
    assert act_role_problem(roster, APPROVED, "apr") is None
    recorded, _ = agency(B, "apr")
    assert recorded.roles_recorded and act_role_problem(recorded, APPROVED, "apr") is not None


def co_approval(by: Person, certified: dict[str, Any]) -> dict[str, str]:
    c = certified["certified"]
    digest = grant_digest(B, c["grant"], c["staff"], c["role"], c["proposed_by"])
    at, noted = "2026-12-07T03:00:00+00:00", note_digest("the only administrator called")
    statement = co_approval_statement(by.agency, by.staff, by.key_id, B, c["grant"], digest, noted, at)
    return {
        "prefecture": by.agency, "staff": by.staff, "key_id": by.key_id, "agency": B, "grant": c["grant"],
        "digest": digest, "note_digest": noted, "at": at, "signature": by.sign(statement),
    }  # fmt: skip


def test_break_glass_a_prefecture_administrators_co_approval_certifies_at_a_peer() -> None:
    """Threat: a peer agency (another prefecture's administrator, or a prefecture's clerk) co-approving, and a
    co-approval checked without the prefecture's roster."""
    roster, people = agency(B, "tanaka")
    tokyo, tokyo_people = agency(P, "clerk")
    osaka, osaka_people = agency(OSAKA)
    rosters = {P: tokyo, OSAKA: osaka}
    proposal = grant(people["admin"], "tanaka", "operator")
    for by, why in (
        (osaka_people["admin"], "not the prefecture"),
        (tokyo_people["clerk"], "not an administrator's key"),
    ):
        attempt = {"certified": {**proposal["certified"], "co_approval": co_approval(by, proposal)}}
        problem = roster.apply("RoleCertified", attempt, rosters.get)
        assert problem is not None and why in problem, problem
    genuine = {"certified": {**proposal["certified"], "co_approval": co_approval(tokyo_people["admin"], proposal)}}
    unseen = roster.apply("RoleCertified", genuine)  # P's roster not received here
    assert unseen is not None and "roster here" in unseen
    assert roster.apply("RoleCertified", genuine, rosters.get) is None
    assert roster.holds("tanaka", "operator")


def test_a_staff_answer_is_a_reviewers_proposal_and_an_approvers_approval_and_no_administrators() -> None:
    """Threat: an administrator or insider enrolling sock accounts (certified keys; a role only one
    administrator signed) to sign both halves of a consultation's decision, or two approvers deciding with no
    reviewer, or a half signed with an administrator's own key; a peer agency with the provider's node key
    sending a grant one administrator signed alone. A roster that records no roles, or that never certified a
    reviewer (before reviewer travelled), proves no authority for a decision."""
    roster, people = agency(B, "rev", "apr", "apr2", "sock", "sock2", "both")
    admin, admin2 = people["admin"], people["admin2"]
    for who, role in (("apr", "approver"), ("apr2", "approver"), ("rev", "reviewer"), ("both", "reviewer")):
        assert roster.apply("RoleCertified", grant(admin, who, role, approver=admin2)) is None
    assert roster.apply("RoleCertified", grant(admin, "both", "approver", approver=admin2)) is None
    # reviewer is privileged: one administrator alone certifies it for nobody
    assert "second administrator" in str(roster.apply("RoleCertified", grant(admin, "sock", "reviewer")))
    assert roster.apply("RoleCertified", grant(admin, "sock2", "approver")) is not None
    assert decision_role_problem(roster, ("rev", "apr")) is None
    assert decision_role_problem(roster, ("apr", "rev")) is None  # one statement: the order proves nothing
    assert decision_role_problem(roster, ("both", "apr")) is None  # both holds reviewer: apr approves
    two_approvers = str(decision_role_problem(roster, ("apr", "apr2")))
    assert "one signer holding reviewer and the other approver" in two_approvers
    assert "apr holds approver, apr2 holds approver" in two_approvers
    assert "sock holds neither, sock2 holds neither" in str(decision_role_problem(roster, ("sock", "sock2")))
    assert "rev holds reviewer, sock holds neither" in str(decision_role_problem(roster, ("rev", "sock")))
    assert "four eyes are two people" in str(decision_role_problem(roster, ("both", "both")))
    assert "administrator may not" in str(decision_role_problem(roster, ("admin2", "apr")))
    assert "administrator may not" in str(decision_role_problem(roster, ("rev", "admin")))
    assert roster.apply("RolesWithdrawn", {"staff": "rev", "roles": ["reviewer"]}) is None
    assert "rev holds neither" in str(decision_role_problem(roster, ("rev", "apr")))  # withdrawn: not counted
    old, _ = agency(B, "rev", "apr", roles=False)
    assert "records no roles" in str(decision_role_problem(old, ("rev", "apr")))
    no_reviewer, staff = agency(B, "rev", "apr")  # roles recorded, but no reviewer ever certified
    assert (
        no_reviewer.apply("RoleCertified", grant(staff["admin"], "apr", "approver", approver=staff["admin2"])) is None
    )
    assert "before_reviewer_roles" in str(decision_role_problem(no_reviewer, ("rev", "apr")))
