"""RoleGrant and the separation-of-duties rules on their own (ledger/domain/role_grants.py, duties.py)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.agencies import Agency, Staff
from ledger.domain.duties import duty_refusal, permission_conflict, role_conflict
from ledger.domain.role_grants import RoleGrant
from ledger.domain.types import DEFAULT_PERMISSIONS, Action, Role
from ledger.errors import Code, RuleViolation, SelfApprovalError, StateConflict
from tests.support.domain import A, emitted

G = "ledger.domain.role_grants:RoleGrant."


def proposed(by: str = "admin", role: str = "approver") -> RoleGrant:
    return RoleGrant(id=uuid4(), agency=A, staff_id="sock", role=role, proposed_by=by, note="", at_enrolment=False)


def test_a_grant_takes_a_second_administrator_and_is_decided_once() -> None:
    """Threat: an administrator approving the stand-in account it proposed."""
    g = proposed()
    with pytest.raises(SelfApprovalError):
        g.approve("admin", "mine")
    g.approve("admin2", "checked")
    assert (g.status, g.decided_by, g.decided_by_agency) == ("approved", "admin2", A)
    for decide in (lambda: g.approve("admin3", ""), lambda: g.reject("admin3", ""), lambda: g.withdraw("admin", "")):
        with pytest.raises(StateConflict) as closed:
            decide()
        assert closed.value.code == Code.GRANT_CLOSED
    assert emitted(g) == [G + "Proposed", G + "Approved"]


def test_nobody_approves_a_role_for_themselves_and_only_the_proposer_withdraws() -> None:
    """Threat: an administrator (or the grantee) deciding their own grant."""
    g = RoleGrant(
        id=uuid4(), agency=A, staff_id="admin2", role="operator", proposed_by="admin", note="", at_enrolment=True
    )
    with pytest.raises(SelfApprovalError):
        g.approve("admin2", "")
    with pytest.raises(StateConflict):
        g.reject("admin", "")
    with pytest.raises(StateConflict):
        g.withdraw("admin3", "")
    g.withdraw("admin", "wrong person")
    assert g.status == "withdrawn" and emitted(g) == [G + "Proposed", G + "Withdrawn"]


def test_break_glass_is_another_agencys_recorded_approval_with_a_reason() -> None:
    """Threat: a lone administrator (or a shell user) using break-glass silently or as its own agency."""
    g = proposed()
    with pytest.raises(StateConflict):
        g.approve_break_glass("admin", A, "own agency")
    with pytest.raises(StateConflict):
        g.approve_break_glass("admin", "130001", "  ")
    g.approve_break_glass("admin", "130001", "confirmed by letter")
    assert (g.status, g.decided_by_agency) == ("approved", "130001")
    assert emitted(g) == [G + "Proposed", G + "BreakGlassApproved"]


def test_an_administrator_never_holds_a_duty_role() -> None:
    """Threat: an administrator granting itself requester, approver or operator."""
    admin = Staff(id=Staff.create_id(), agency=A, staff_id="admin", name="a", roles=["administrator"], by="system")
    for role in (Role.REQUESTER, Role.APPROVER, Role.OPERATOR):
        with pytest.raises(RuleViolation) as refused:
            admin.grant_role(role, by="admin")
        assert refused.value.code == Code.ROLE_CONFLICT
    admin.grant_role(Role.AUDITOR, by="admin2")  # not a duty: allowed
    assert role_conflict(["administrator", "operator", "counter"]) == ["operator"]
    assert role_conflict(["approver", "operator"]) == []


def test_the_default_table_is_clean_and_duties_are_refused_to_administrators() -> None:
    """Threat: an administrator reaching a duty through the permission table."""
    for role, actions in DEFAULT_PERMISSIONS.items():
        for action in actions:
            assert permission_conflict(role.value, action.value) is None, (role, action)
    agency = Agency(code=A, name="A市", kind="municipality")
    assert duty_refusal(agency.permissions, ["approver"], Action.APPROVE_FLAG) is None
    assert duty_refusal(agency.permissions, ["administrator", "approver"], Action.APPROVE_FLAG) is not None
    assert duty_refusal(agency.permissions, ["administrator", "approver"], Action.ADMINISTER) is None
    with pytest.raises(RuleViolation):
        agency.grant(Role.COUNTER, Action.ADMINISTER, by="admin")
