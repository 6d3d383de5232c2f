"""Agency and Staff on their own: the approval policy, the permission table, roles and deactivation."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.agencies import Agency, Staff
from ledger.domain.types import DEFAULT_PERMISSIONS, Action, Role
from ledger.errors import InputError, StateConflict
from tests.support.domain import A, B, emitted

G = "ledger.domain.agencies:"


def test_an_agency_is_found_by_code_and_starts_from_the_default_permissions() -> None:
    """Threat: a peer agency registering itself under another's stream — the id follows from the code alone."""
    a = Agency(code=A, name="A市", kind="municipality")
    assert a.id == Agency.create_id(A) != Agency.create_id(B)
    assert a.agency == A and a.approvals_required == 1
    for role, actions in DEFAULT_PERMISSIONS.items():
        assert all(a.allows({role.value}, act) for act in actions)
    assert not a.allows({"requester"}, Action.APPROVE_FLAG)  # the requester never approves by default
    assert not a.allows({"counter"}, Action.VIEW_PROTECTED)
    assert not a.allows(set(), Action.AUDIT)
    assert emitted(a) == [G + "Agency.Registered"]


def test_the_approval_chain_is_between_one_and_five() -> None:
    """Threat: an administrator / shell user disabling four eyes (0) or making approval impossible."""
    a = Agency(code=A, name="A市", kind="municipality")
    for bad in (0, 6, -1):
        with pytest.raises(InputError):
            a.set_approvals_required(bad, "admin")
    a.set_approvals_required(3, "admin")
    assert a.approvals_required == 3
    assert emitted(a)[1:] == [G + "Agency.ApprovalPolicyChanged"]


def test_permissions_change_one_at_a_time_and_only_when_they_would() -> None:
    """Threat: an insider widening a role — each grant and revoke is its own event and a no-op is refused."""
    a = Agency(code=A, name="A市", kind="municipality")
    with pytest.raises(StateConflict, match="already"):
        a.grant(Role.APPROVER, Action.APPROVE_FLAG, "admin")
    with pytest.raises(StateConflict, match="does not have"):
        a.revoke(Role.COUNTER, Action.VIEW_PROTECTED, "admin")
    a.grant(Role.COUNTER, Action.VIEW_PROTECTED, "admin")
    assert a.allows({"counter"}, Action.VIEW_PROTECTED)
    a.revoke(Role.COUNTER, Action.VIEW_PROTECTED, "admin")
    assert not a.allows({"counter"}, Action.VIEW_PROTECTED)
    assert emitted(a)[1:] == [G + "Agency.PermissionGranted", G + "Agency.PermissionRevoked"]


def test_staff_roles_and_deactivation() -> None:
    """Threat: an administrator / shell user — roles are a set, changes are recorded, deactivation once."""
    s = Staff(id=uuid4(), agency=A, staff_id="apr", name="承認 花子", roles=["approver", "approver"], by="admin")
    assert s.roles == ["approver"] and s.active
    with pytest.raises(StateConflict, match="already has"):
        s.grant_role(Role.APPROVER, "admin")
    with pytest.raises(StateConflict, match="does not have"):
        s.revoke_role(Role.AUDITOR, "admin")
    s.grant_role(Role.AUDITOR, "admin")
    s.revoke_role(Role.APPROVER, "admin")
    assert s.roles == ["auditor"]
    s.deactivate("admin")
    with pytest.raises(StateConflict, match="already deactivated"):
        s.deactivate("admin")
    assert not s.active and Staff.SHARED is False and Agency.SHARED is True
    assert emitted(s) == [
        G + "Staff.Enrolled",
        G + "Staff.RoleGranted",
        G + "Staff.RoleRevoked",
        G + "Staff.Deactivated",
    ]


def test_an_agencys_kind_is_fixed_at_registration() -> None:
    """Threat: a peer agency asking a hosted agency for what the law gives another kind — the node remembers a
    hosted agency's kind from its registration (ProvisionCommands.hosted_kind), so no later Agency event may
    change it: every change leaves the kind, and an Agency event added beside these fails here until the
    remembered kinds follow it."""
    a = Agency(code=A, name="支援センター", kind="support_centre")
    a.set_approvals_required(2, "admin")
    a.grant(Role.COUNTER, Action.VIEW_PROTECTED, "admin")
    a.revoke(Role.COUNTER, Action.VIEW_PROTECTED, "admin")
    assert a.kind == "support_centre"
    events = {name for name, v in vars(Agency).items() if isinstance(v, type) and issubclass(v, Agency.Event)}
    assert events - {"Event", "Created"} == {
        "Registered",
        "ApprovalPolicyChanged",
        "PermissionGranted",
        "PermissionRevoked",
    }
