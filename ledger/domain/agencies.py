"""Agencies, their approval policy, the per-role permission table, and staff with roles; ``QUERIER_KINDS``: which
agency kinds may ask under a law catalogue row (defined in ``ledger.domain.queriers``, a module without eventsourcing,
so the hub — which may not import it — checks the same mapping)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id
from ledger.domain.duties import conflict_message, permission_conflict, role_conflict
from ledger.domain.queriers import QUERIER_KINDS
from ledger.domain.types import DEFAULT_PERMISSIONS, SYSTEM_ONLY_ACTIONS, SYSTEM_ONLY_ROLES, Action, Role
from ledger.errors import Code, InputError, PermissionDenied, RuleViolation, StateConflict

__all__ = ["QUERIER_KINDS", "Agency", "Staff"]


def _check_changeable(role: Role, action: Action) -> None:
    """A system kind's roles keep their fixed actions, and no staff role is given a system-only action:
    otherwise one recorded grant would let every counter clerk read the portal (issue 18)."""
    if role in SYSTEM_ONLY_ROLES or action in SYSTEM_ONLY_ACTIONS:
        raise PermissionDenied(
            "system accounts' permissions are fixed by their kind, and staff roles never get theirs",
            code=Code.SYSTEM_ROLE,
        )


class Agency(LedgerAggregate):
    SHARED = True

    @staticmethod
    def create_id(code: str, **_: Any) -> UUID:
        # public on purpose: it names an agency, no person, and every node looks agencies up by code
        return stable_id("agency", code)

    @event("Registered")
    def __init__(self, code: str, name: str, kind: str, approvals_required: int = 1) -> None:
        self.code = code
        self.agency = code
        self.name = name
        self.kind = kind
        self.approvals_required = approvals_required
        self.permissions: dict[str, list[str]] = {
            r.value: sorted(a.value for a in acts) for r, acts in DEFAULT_PERMISSIONS.items()
        }

    def allows(self, roles: set[str], action: Action) -> bool:
        return any(action.value in self.permissions.get(r, ()) for r in roles)

    def set_approvals_required(self, n: int, by: str) -> None:
        if not 1 <= n <= 5:
            raise InputError("approval chain length must be between 1 and 5")
        self._policy_changed(approvals_required=n, by=by)

    @event("ApprovalPolicyChanged")
    def _policy_changed(self, approvals_required: int, by: str) -> None:
        self.approvals_required = approvals_required

    def grant(self, role: Role, action: Action, by: str) -> None:
        _check_changeable(role, action)
        if action.value in self.permissions.get(role.value, ()):
            raise StateConflict(f"role {role} already may {action}")
        why = permission_conflict(role.value, action.value)
        if why is not None:
            raise RuleViolation(f"role {role} may not be given {action}: {why}", code=Code.ROLE_CONFLICT)
        self._granted(role=role.value, action=action.value, by=by)

    @event("PermissionGranted")
    def _granted(self, role: str, action: str, by: str) -> None:
        self.permissions[role] = sorted({*self.permissions.get(role, []), action})

    def revoke(self, role: Role, action: Action, by: str) -> None:
        _check_changeable(role, action)
        if action.value not in self.permissions.get(role.value, ()):
            raise StateConflict(f"role {role} does not have {action}")
        self._revoked(role=role.value, action=action.value, by=by)

    @event("PermissionRevoked")
    def _revoked(self, role: str, action: str, by: str) -> None:
        self.permissions[role] = [a for a in self.permissions.get(role, []) if a != action]


class Staff(LedgerAggregate):
    # ``id``: the agency's keyed id for the staff id (FlagLedger.ids.staff; see ledger.log.stream_ids)
    @event("Enrolled")
    def __init__(self, id: UUID, agency: str, staff_id: str, name: str, roles: list[str], by: str) -> None:
        self.agency = agency
        self.staff_id = staff_id
        self.name = name
        self.roles: list[str] = sorted(set(roles))
        self.active = True

    def grant_role(self, role: Role, by: str) -> None:
        if role.value in self.roles:
            raise StateConflict(f"{self.staff_id} already has role {role}")
        if role_conflict([*self.roles, role.value]):
            raise RuleViolation(conflict_message(self.staff_id, [*self.roles, role.value]), code=Code.ROLE_CONFLICT)
        self._role_granted(role=role.value, by=by)

    @event("RoleGranted")
    def _role_granted(self, role: str, by: str) -> None:
        self.roles = sorted({*self.roles, role})

    def revoke_role(self, role: Role, by: str) -> None:
        if role.value not in self.roles:
            raise StateConflict(f"{self.staff_id} does not have role {role}")
        self._role_revoked(role=role.value, by=by)

    @event("RoleRevoked")
    def _role_revoked(self, role: str, by: str) -> None:
        self.roles = [r for r in self.roles if r != role]

    def deactivate(self, by: str) -> None:
        if not self.active:
            raise StateConflict(f"{self.staff_id} is already deactivated")
        self._deactivated(by=by)

    @event("Deactivated")
    def _deactivated(self, by: str) -> None:
        self.active = False
