"""Roles at peers (issue 18, docs/staff-signing.md "Roles at peers"): a peer checks not only that certified
people requested, approved and executed a flag change, but that the roster gave each the role for their act
— a role certified there by two administrators' staff-key signatures — at that point of the log.

Two nodes: B's (where the administrator or shell user acts) and C's (a peer ingesting B's events).
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from uuid import UUID

import pytest

from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.domain.agencies import Staff
from ledger.domain.flags import Protection
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import EXECUTED, PROPOSED_ROLE, act_statement, grant_digest, note_digest, role_statement
from ledger.errors import Code, PermissionDenied
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B, C, NodeFactory
from tests.support.people import individual_number
from tests.support.staff import activate_admin, enrol, password_of
from tests.support.trust import trust

FLAGS = ["NON_DISCLOSURE"]
ADMIN = Actor(B, "admin")


@pytest.fixture
def pair(make_node: NodeFactory, tmp_path: Path) -> tuple[Node, Node]:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    c = make_node((AgencySpec(C, "C市", "municipality"),), name="c", pseudonym_key_file=key)
    trust(b, c)
    trust(c, b)
    enrol(b, ADMIN, "clerk", ["counter"])  # a certified person of B, never granted approver
    return b, c


def deliver(src: Node, dst: Node, after: int = 0) -> dict[str, Outcome]:
    """What ``src`` publishes after ``after``, ingested by ``dst``: topic of each event not applied → outcome."""
    pending = PendingStore(dst.app, dst.engine)
    refused: dict[str, Outcome] = {}
    for _, _, raw in publishable(src.app, after):
        outcome = ingest(dst.app, raw, pending)
        if outcome.kind not in ("applied", "duplicate"):
            refused[Envelope.from_bytes(raw).header.topic.rsplit(":", 1)[1]] = outcome
    return refused


def local_role(b: Node, who: str, role: str) -> None:
    """The administrator (with the node's shell) writes ``Staff.RoleGranted`` alone: no grant, no second
    administrator. This node's own permission check now lets ``who`` act in ``role``."""
    member = b.app.load(Staff, b.app.ids.staff(B, who), "staff member")
    member._role_granted(role=role, by="admin")
    b.app.save_as(B, member)


def force_execution(b: Node, rid: UUID) -> None:
    """A patched build executing without the app's role check: op's own (genuine) signature on Executed and
    the FlagsSet carrying the request's signed acts."""
    app = b.app
    request = app.flag_request(rid)
    statement = act_statement(B, EXECUTED, str(rid), request.digest(), "op", note_digest(""))
    request._executed(by="op", staff_signature=app.signer_for(Actor(B, "op")).sign(statement))
    pid = app.ids.protection(B, request.subject)
    protection = app.find(Protection, pid) or Protection(id=pid, agency=B, subject=request.subject)
    protection._set(
        agency=B, subject=request.subject, flags=request.flags, request_id=request.id, by="op",
        reason=request.reason, review_date=request.review_date, evidence=request.evidence(),
    )  # fmt: skip
    app.save_as(B, request, protection)


def refused_everywhere(b: Node, c: Node, rid: UUID, start: int, why: str) -> None:
    """The app will not execute ``rid``; forced, the peer parks its flag change ``staff_role`` and
    ``audit verify`` names it."""
    with pytest.raises(PermissionDenied) as refused:
        b.app.execute_request(Actor(B, "op"), rid)
    assert refused.value.code == Code.STAFF_ROLE and why in str(refused.value), str(refused.value)
    force_execution(b, rid)
    parked = deliver(b, c, start)["Protection.FlagsSet"]
    assert parked.kind == "parked" and parked.code == Code.STAFF_ROLE and why in parked.reason, parked
    report = verify_log(b.app, workers=1)
    assert not report.ok and any(
        f.code == Code.STAFF_ROLE and f.topic.endswith("Protection.FlagsSet") and why in f.reason
        for f in report.staff_findings
    ), report.staff_findings


def test_a_peer_rejects_a_flag_change_approved_by_a_certified_person_never_granted_approver(
    pair: tuple[Node, Node],
) -> None:
    """Threat: an administrator / shell user giving a certified clerk approver on their own node (no second
    administrator): the clerk's signature is genuine, their role is not — refused by the app, parked by the
    peer (``staff_role``), named by ``audit verify`` (the approval and the flag change)."""
    b, c = pair
    assert deliver(b, c) == {}
    start = b.app.max_position()
    local_role(b, "clerk", "approver")
    rid = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "clerk"), rid)  # this node lets them; the roster never gave them approver
    refused_everywhere(b, c, rid, start, "clerk does not hold approver")
    report = verify_log(b.app, workers=1)
    assert any(f.topic.endswith("FlagRequest.Approved") and f.code == Code.STAFF_ROLE for f in report.staff_findings)


def test_a_grant_with_one_administrators_signature_certifies_no_role_at_a_peer(pair: tuple[Node, Node]) -> None:
    """Threat: an administrator alone writing the roster's RoleCertified for approver with only their own
    signature (the node key seals it): every reader ignores it, the peer parks it, the role does not count."""
    b, c = pair
    assert deliver(b, c) == {}
    start = b.app.max_position()
    gid = str(uuid.uuid4())
    digest = grant_digest(B, gid, "clerk", "approver", "admin")
    signed = b.app.signer_for(ADMIN).sign(role_statement(PROPOSED_ROLE, digest))
    roster = b.app.load(StaffRoster, StaffRoster.create_id(B), "staff roster")
    roster.certify_role(
        certified={
            "staff": "clerk", "role": "approver", "grant": gid, "proposed_by": "admin",
            "proposal": {"staff": "admin", "key_id": signed["key_id"], "signature": signed["signature"]},
            "approval": None, "co_approval": None,
        }
    )  # fmt: skip
    b.app.save_as(B, roster)  # the event itself: the roster check is what the administrator skips
    local_role(b, "clerk", "approver")
    assert not b.app.roster(B).holds("clerk", "approver")  # type: ignore[union-attr]
    rid = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "clerk"), rid)
    with pytest.raises(PermissionDenied) as refused:
        b.app.execute_request(Actor(B, "op"), rid)
    assert refused.value.code == Code.STAFF_ROLE
    force_execution(b, rid)
    parked = deliver(b, c, start)
    assert parked["StaffRoster.RoleCertified"].code == Code.STAFF_SIGNATURE
    assert "second administrator" in parked["StaffRoster.RoleCertified"].reason
    assert parked["Protection.FlagsSet"].code == Code.STAFF_ROLE
    assert not c.app.roster(B).holds("clerk", "approver")  # type: ignore[union-attr]
    report = verify_log(b.app, workers=1)
    assert any("second administrator" in f.reason for f in report.staff_findings)


def test_a_role_withdrawn_before_the_act_does_not_count(pair: tuple[Node, Node]) -> None:
    """Threat: an administrator / shell user keeping a removed approver's approval in force: apr approved,
    then lost approver (``RolesWithdrawn``); the flag change logged after that is refused and parked."""
    b, c = pair
    assert deliver(b, c) == {}
    assert c.app.roster(B).holds("apr", "approver")  # type: ignore[union-attr]  # the two-administrator grant
    start = b.app.max_position()
    rid = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.revoke_role(ADMIN, "apr", "approver")
    local_role(b, "apr", "approver")  # written back on this node alone: the roster does not give it back
    refused_everywhere(b, c, rid, start, "apr does not hold approver")
    assert not c.app.roster(B).holds("apr", "approver")  # type: ignore[union-attr]


def test_genuine_flag_changes_and_role_changes_verify_at_the_peer(pair: tuple[Node, Node]) -> None:
    """The control: roles granted by two administrators, a requester by one, a deactivation — the peer
    applies all of it, and ``audit verify`` finds nothing and lists nothing as before staff roles."""
    b, c = pair
    rid = b.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    b.app.deactivate_staff(ADMIN, "apr2")
    assert deliver(b, c) == {}
    peer_view = c.app.roster(B)
    assert peer_view is not None and peer_view.roles_recorded
    assert peer_view.holds("req", "requester") and peer_view.holds("op", "operator")
    assert not peer_view.holds("apr2", "approver")
    report = verify_log(b.app, workers=1)
    assert report.ok and not report.staff_findings and not report.before_staff_roles


def test_a_roster_opened_over_staff_who_already_held_roles_is_listed_never_passed_silently(
    make_node: NodeFactory,
) -> None:
    """Threat: an administrator / shell user hiding behind an old log. Staff held requester before the roster
    existed (a log from before staff signing): the roster records no roles, its flag changes are applied as
    before, and ``audit verify`` lists each signed flag event as ``before_staff_roles`` — not as verified."""
    node = make_node((AgencySpec(B, "B市", "municipality"),), name="old", staff=False)
    node.app.enrol(ADMIN, "req", "req", ["requester"])  # enrolled before the roster's root
    activate_admin(node, B)
    code = node.app.issue_enrolment_code(ADMIN, "req")
    node.app.activate_credential(B, "req", code, password_of(B, "req"))
    for who, role in (("apr", "approver"), ("op", "operator")):
        enrol(node, ADMIN, who, [role])
    roster = node.app.roster(B)
    assert roster is not None and not roster.roles_recorded
    rid = node.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    report = verify_log(node.app, workers=1)
    assert report.ok and not report.staff_findings
    listed = {f.topic.rsplit(".", 1)[1] for f in report.before_staff_roles}
    assert {"Requested", "Approved", "Executed", "FlagsSet"} <= listed
    assert all(f.code == "before_staff_roles" for f in report.before_staff_roles)
