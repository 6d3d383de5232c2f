"""Separation of duties (issue 18): an administrator never requests, approves or executes, and a privileged
role (approver, operator, administrator) takes effect only when a second administrator approves its grant.

Threats: **an administrator** acting alone — granting themselves requester/approver/operator, enrolling
stand-in accounts (``sock``, ``admin2``) and giving them approver so approvals are recorded under other names —
and **a shell user** driving the same commands with ``--as``. Every step is a ledger event the audit report
lists (who, what, when, approved by whom).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.app import Actor
from ledger.audit.report import audit_report
from ledger.domain.agencies import Agency, Staff
from ledger.errors import (
    Code,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    SelfApprovalError,
    StateConflict,
)
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.support.api import auth, client
from tests.support.people import individual_number
from tests.support.staff import activate_admin, activate_second_administrator, enrol, enrol_approved, password_of

A, B, P = "131016", "131024", "130001"  # two municipalities and their prefecture (Tokyo), one node
OSAKA = "270008"  # another prefecture, also hosted here
ADMIN, ADMIN2, PREF = Actor(A, "admin"), Actor(A, "admin2"), Actor(P, "admin")


@pytest.fixture
def node(tmp_path: Path, backend: str | None) -> Iterator[Node]:
    n = init_node(
        tmp_path / "node",
        (
            AgencySpec(A, "A市", "municipality", second_administrator="admin2"),
            AgencySpec(B, "B市", "municipality"),  # a single administrator: only break-glass grants there
            AgencySpec(P, "東京都", "prefecture"),
            AgencySpec(OSAKA, "大阪府", "prefecture"),
        ),
        database_url=backend,
    )
    for code in (A, B, P, OSAKA):  # each first administrator activates the code set-up printed (staff signing)
        activate_admin(n, code, second=False)  # A's admin2 is named by its spec; B has a single administrator
    # admin2 (named at set-up) activates too: an administrator signs the grants they approve (roles at peers)
    activate_second_administrator(n, A)
    enrol(n, ADMIN, "req", ["requester"])
    yield n
    n.close()


def roles(node: Node, agency: str, who: str) -> list[str]:
    return node.app.staff(agency, who).roles


def test_an_administrator_cannot_grant_itself_a_duty_role(node: Node) -> None:
    """Threat: an administrator acting alone.
    An administrator grants itself requester (one step), approver or operator (proposed): all refused with
    code role_conflict, nothing recorded."""
    before = node.app.max_position()
    for role in ("requester", "approver", "operator"):
        with pytest.raises(RuleViolation) as refused:
            node.app.grant_role(ADMIN, "admin", role)
        assert refused.value.code == Code.ROLE_CONFLICT and "separation of duties" in str(refused.value)
        with pytest.raises(RuleViolation):  # nor may the other administrator propose or approve it
            node.app.grant_role(ADMIN2, "admin", role)
    assert node.app.max_position() == before
    assert roles(node, A, "admin") == ["administrator"]


def test_enrolling_an_administrator_with_a_duty_role_is_refused(node: Node) -> None:
    """Threat: an administrator enrolling a stand-in.
    A stand-in with administrator and approver at once is refused; so is making an approver administrator."""
    before = node.app.max_position()
    with pytest.raises(RuleViolation) as refused:
        node.app.enroll_staff(ADMIN, "sock", "sock", ["administrator", "approver"])
    assert refused.value.code == Code.ROLE_CONFLICT
    assert node.app.max_position() == before
    enrol_approved(node, ADMIN, "apr", ["approver"])
    with pytest.raises(RuleViolation):
        node.app.grant_role(ADMIN, "apr", "administrator")


def test_a_stand_in_approver_needs_a_second_administrator(node: Node) -> None:
    """Threat: an administrator (or a shell user typing --as) enrolling `sock`.
    The administrator enrols ``sock`` as approver: sock is enrolled without it and a grant waits. Until a
    second administrator approves, sock approves nothing; the proposer cannot approve its own grant, nor can
    sock; only admin2 can, and then the role counts."""
    (grant,) = node.app.enrol(ADMIN, "sock", "sock", ["approver"])
    assert grant.status == "pending" and grant.role == "approver" and roles(node, A, "sock") == []
    sock_code = node.app.issue_enrolment_code(ADMIN, "sock")  # sock is a real person with a key of their own
    node.app.activate_credential(A, "sock", sock_code, password_of(A, "sock"))
    rid = node.app.request_flags(Actor(A, "req"), individual_number(), ["NON_DISCLOSURE"])
    with pytest.raises(PermissionDenied):
        node.app.approve_request(Actor(A, "sock"), rid)
    with pytest.raises(SelfApprovalError) as own:
        node.app.approve_grant(ADMIN, grant.id)
    assert own.value.code == Code.FOUR_EYES
    with pytest.raises(PermissionDenied):  # sock is no administrator
        node.app.approve_grant(Actor(A, "sock"), grant.id)
    assert [g.id for g in node.app.role_grants(ADMIN2)] == [grant.id]
    done = node.app.approve_grant(ADMIN2, grant.id, "checked with the section chief")
    assert (done.status, done.proposed_by, done.decided_by) == ("approved", "admin", "admin2")
    assert roles(node, A, "sock") == ["approver"] and node.app.role_grants(ADMIN) == []
    node.app.approve_request(Actor(A, "sock"), rid)
    with pytest.raises(StateConflict) as again:
        node.app.approve_grant(ADMIN2, grant.id)
    assert again.value.code == Code.GRANT_CLOSED


def test_a_second_administrator_cannot_be_made_by_one(node: Node) -> None:
    """Threat: an administrator enrolling `admin2`.
    At B (one administrator) ``admin2`` enrolled as administrator stays without the role: nobody at B can
    approve it, another municipality's administrator cannot either; only break-glass can."""
    (grant,) = node.app.enrol(Actor(B, "admin"), "admin2", "admin2", ["administrator"])
    assert roles(node, B, "admin2") == []
    with pytest.raises(SelfApprovalError):
        node.app.approve_grant(Actor(B, "admin"), grant.id)
    with pytest.raises(PermissionDenied):
        node.app.approve_grant(Actor(B, "admin2"), grant.id)
    with pytest.raises(NotFoundError):  # another agency's grant is answered like an unknown one
        node.app.approve_grant(ADMIN, grant.id)
    with pytest.raises(RuleViolation) as not_prefecture:
        node.app.approve_grant(ADMIN, grant.id, "A helps", break_glass=True)
    assert not_prefecture.value.code == Code.BREAK_GLASS_REFUSED
    assert roles(node, B, "admin2") == []


def test_break_glass_the_prefecture_co_approves_for_a_single_administrator(node: Node) -> None:
    """Threat: a lone administrator, and break-glass used silently.
    B has one administrator: its prefecture's administrator co-approves, saying why; the approval is its own
    event (BreakGlassApproved) and the role is recorded as granted by P/admin, never silently."""
    (grant,) = node.app.enrol(Actor(B, "admin"), "admin2", "admin2", ["administrator"])
    with pytest.raises(NotFoundError):  # without --break-glass it is no approval the prefecture may give
        node.app.approve_grant(PREF, grant.id)
    with pytest.raises(StateConflict):  # a note saying why is required
        node.app.approve_grant(PREF, grant.id, " ", break_glass=True)
    with pytest.raises(RuleViolation) as elsewhere:  # a prefecture, but not B's
        node.app.approve_grant(Actor(OSAKA, "admin"), grant.id, "helping out", break_glass=True)
    assert elsewhere.value.code == Code.BREAK_GLASS_REFUSED and "not the prefecture" in str(elsewhere.value)
    before = node.app.max_position()
    done = node.app.approve_grant(
        PREF, grant.id, "B's only administrator called; confirmed by letter", break_glass=True
    )
    assert (done.status, done.decided_by, done.decided_by_agency) == ("approved", "admin", P)
    assert roles(node, B, "admin2") == ["administrator"]
    topics = [env.header.topic for _, _, env in node.app.envelopes(start=before + 1)]
    assert topics == [
        "ledger.domain.role_grants:RoleGrant.BreakGlassApproved",
        "ledger.domain.agencies:Staff.RoleGranted",
        "ledger.domain.roster:StaffRoster.RoleCertified",  # with the co-approval: peers check the role too
    ]
    assert node.app.roster(B).holds("admin2", "administrator")  # type: ignore[union-attr]
    code = node.app.issue_enrolment_code(Actor(B, "admin"), "admin2")  # admin2 gets a key to sign with
    node.app.activate_credential(B, "admin2", code, password_of(B, "admin2"))
    # B now has two administrators: break-glass is over, the second one approves
    (op,) = node.app.enrol(Actor(B, "admin"), "op", "op", ["operator"])
    with pytest.raises(RuleViolation) as two:
        node.app.approve_grant(PREF, op.id, "again", break_glass=True)
    assert two.value.code == Code.BREAK_GLASS_REFUSED and "2 active administrators" in str(two.value)
    node.app.approve_grant(Actor(B, "admin2"), op.id)
    assert roles(node, B, "op") == ["operator"]


def test_a_grant_can_be_rejected_or_withdrawn_and_lapses_with_its_proposer(node: Node) -> None:
    """Threat: an administrator reviving a refused grant.
    Another administrator rejects, the proposer withdraws (not the other way round); a grant whose proposer
    was deactivated is not approved."""
    node.app.enroll_staff(ADMIN, "clerk", "clerk", ["counter"])
    first = node.app.grant_role(ADMIN, "clerk", "operator")
    assert first is not None
    with pytest.raises(StateConflict):
        node.app.grant_role(ADMIN, "clerk", "operator")  # one pending grant per member and role
    with pytest.raises(StateConflict):
        node.app.reject_grant(ADMIN, first)  # the proposer withdraws instead
    assert node.app.reject_grant(ADMIN2, first, "not in this section").status == "rejected"
    second = node.app.grant_role(ADMIN, "clerk", "operator")
    assert second is not None
    with pytest.raises(StateConflict):
        node.app.withdraw_grant(ADMIN2, second)
    assert node.app.withdraw_grant(ADMIN, second, "typo").status == "withdrawn"
    third = node.app.grant_role(ADMIN2, "clerk", "operator")
    assert third is not None
    node.app.enroll_staff(ADMIN, "admin3", "admin3", ["counter"])
    node.app.deactivate_staff(ADMIN, "admin2")
    with pytest.raises(StateConflict):
        node.app.approve_grant(ADMIN, third)
    assert roles(node, A, "clerk") == ["counter"]


def test_roles_an_old_log_combined_stop_counting(node: Node) -> None:
    """Threat: an administrator who became an approver before the rule.
    A log written before this rule may hold an administrator who is also an approver, or a permission table
    giving counter the right to approve: those stop counting (code role_conflict, saying what to revoke); the
    administrator can still administer, and revoking the role ends the conflict."""
    sid = node.app.ids.staff(A, "legacy")
    node.app.save_as(  # exactly what enrolment recorded before the rule
        A, Staff(id=sid, agency=A, staff_id="legacy", name="legacy", roles=["administrator", "approver"], by="admin")
    )
    # a key of their own: with the agency's roster recording roles, only a key certified for a person named
    # at set-up or made an administrator by two administrators is an administrator's (staff_roles unit tests)
    legacy_code = node.app.issue_enrolment_code(ADMIN, "legacy")
    with pytest.raises(IntegrityError):
        node.app.activate_credential(A, "legacy", legacy_code, password_of(A, "legacy"))
    rid = node.app.request_flags(Actor(A, "req"), individual_number(), ["NON_DISCLOSURE"])
    with pytest.raises(PermissionDenied) as stale:
        node.app.approve_request(Actor(A, "legacy"), rid)
    assert stale.value.code == Code.ROLE_CONFLICT and "revoke" in str(stale.value)
    node.app.enroll_staff(Actor(A, "legacy"), "clerk", "clerk", ["counter"])  # still administers
    node.app.revoke_role(Actor(A, "legacy"), "legacy", "approver")
    assert roles(node, A, "legacy") == ["administrator"]

    agency = node.app.agency(A)
    agency._granted(role="counter", action="approve_flag", by="admin")  # an old table entry
    node.app.save_as(A, agency)
    with pytest.raises(PermissionDenied) as table:
        node.app.approve_request(Actor(A, "clerk"), rid)
    assert table.value.code == Code.ROLE_CONFLICT and "permission revoke" in str(table.value)


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("counter", "administer"),
        ("administrator", "request_flag"),
        ("counter", "approve_flag"),
        ("requester", "execute_flag"),
        ("auditor", "approve_held"),
        ("counter", "review_held"),  # reviewer is privileged: one administrator may not make one by the table
    ],
)
def test_the_permission_table_cannot_route_around_the_rule(node: Node, role: str, action: str) -> None:
    """Threat: an administrator editing the permission table.
    Giving a one-step role a privileged action, or the administrator role a duty, would make an approver, a
    reviewer or an administrator without the second administrator: refused, nothing recorded."""
    before = node.app.max_position()
    with pytest.raises(RuleViolation) as refused:
        node.app.grant_permission(ADMIN, role, action)
    assert refused.value.code == Code.ROLE_CONFLICT
    assert node.app.max_position() == before
    assert isinstance(node.app.agency(A), Agency)


def test_the_audit_report_lists_every_role_and_account_change(node: Node, tmp_path: Path) -> None:
    """Threat: an administrator hiding a privilege.
    Who, what, when, approved by whom: enrolment, the proposal, its approval (both administrators), the role
    taking effect, a break-glass approval marked so, a revocation and a deactivation."""
    start = datetime.now(UTC) - timedelta(seconds=1)
    enrol_approved(node, ADMIN, "apr", ["approver"])
    (grant,) = node.app.enrol(Actor(B, "admin"), "admin2", "admin2", ["administrator"])
    node.app.approve_grant(PREF, grant.id, "confirmed by letter", break_glass=True)
    node.app.enroll_staff(ADMIN, "aud", "aud", ["auditor"])
    node.app.revoke_role(ADMIN, "req", "requester")
    node.app.deactivate_staff(ADMIN, "req")
    node.app.grant_permission(ADMIN, "counter", "audit")
    node.app.enroll_staff(Actor(B, "admin"), "aud", "aud", ["auditor"])

    def staff_rows(auditor: Actor, out: str) -> tuple[Any, list[tuple[str, ...]]]:
        result = audit_report(node, auditor, start, datetime.now(UTC) + timedelta(minutes=1), tmp_path / out)
        with (tmp_path / out / "staff.csv").open(encoding="utf-8") as fh:
            rows = [
                (r["agency"], r["staff"], r["change"], r["role"], r["by"], r["proposed_by"], r["approved_by"])
                for r in csv.DictReader(fh)
            ]
        return result, rows

    result, rows = staff_rows(Actor(A, "aud"), "a")
    b_result, b_rows = staff_rows(Actor(B, "aud"), "b")  # each auditor sees their own agency's staff (reads)
    assert {r[0] for r in rows} == {A} and {r[0] for r in b_rows} == {B}
    assert (A, "apr", "enrolled", "", "admin", "", "") in rows
    assert (A, "apr", "grant proposed at enrolment", "approver", "admin", "admin", "") in rows
    assert (A, "apr", "grant approved", "approver", "admin2", "admin", "admin2") in rows
    assert (A, "apr", "role granted", "approver", "admin2", "admin", "admin2") in rows
    assert (B, "admin2", "grant approved (BREAK-GLASS)", "administrator", f"{P}/admin", "admin", f"{P}/admin") in b_rows
    assert (B, "admin2", "role granted", "administrator", f"{P}/admin", "admin", f"{P}/admin") in b_rows
    assert (A, "req", "role revoked", "requester", "admin", "", "") in rows
    assert (A, "req", "deactivated", "", "admin", "", "") in rows
    assert (A, "", "permission granted", "counter", "admin", "", "") in rows
    assert result.rows["staff"] == len(rows) and b_result.rows["staff"] == len(b_rows)


def test_over_http_a_stale_conflicting_role_is_403_role_conflict(node: Node) -> None:
    """Threat: an administrator holding an approver role from an older log, approving through the API."""
    legacy = activate_second_administrator(node, A)  # admin2, named at set-up, with a key of their own
    staff = node.app.staff(A, legacy.staff)
    staff._role_granted(role="approver", by="admin")  # exactly what a grant recorded before the rule
    node.app.save_as(A, staff)
    rid = node.app.request_flags(Actor(A, "req"), individual_number(), ["NON_DISCLOSURE"])
    before = node.app.max_position()
    answer = client(node).post(f"/api/v1/flag-requests/{rid}/approve", json={}, headers=auth(node, A, legacy.staff))
    assert answer.status_code == 403 and answer.json()["code"] == "role_conflict"
    assert "separation of duties" in answer.json()["message"]
    assert node.app.max_position() == before + 1  # only the token grant (recorded before it is handed out)
