"""Separation of duties: which roles one person may not hold together, which grants take two administrators,
and which entries the per-role permission table may not have.

An administrator manages staff, roles, keys and policy; if they could also request, approve or execute flag
changes, one person could enrol stand-in accounts and act under them, or approve what they asked for. So:

* **administrator** and the **duty** roles (requester, approver, operator) are never held together: refused
  when enrolling or granting, and — for a combination an older log already holds — an administrator is refused
  every duty action (code ``role_conflict``) until one of the two roles is revoked;
* a **privileged** role (approver, operator, reviewer, administrator) takes effect only when a second
  administrator of the same agency approves its grant (:class:`ledger.domain.role_grants.RoleGrant`); requester,
  counter and auditor grants stay one step. Reviewer is privileged because a reviewer reads held requests and
  probe notices — which name the querying agency, possibly where a victim now lives — and proposes the staff
  answer a hub relays: one administrator enrolling a sock reviewer would read them alone (threat:
  administrator or insider; docs/staff-signing.md, "Decisions the hub relays");
* the permission table follows the same lines (:func:`permission_conflict`): only the administrator role
  administers, the administrator role gets no duty action, and the privileged actions (approve, execute)
  stay with the privileged roles — otherwise a one-step grant of ``counter`` plus a table entry would make an
  approver (or a reviewer) without the second administrator. An action a one-step role also has by default
  (``view_protected``: the auditor's as well as the reviewer's) is not privileged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ledger.domain.types import DEFAULT_PERMISSIONS, Action, Role

__all__ = [
    "DUTY_ACTIONS",
    "DUTY_ROLES",
    "PRIVILEGED_ACTIONS",
    "PRIVILEGED_ROLES",
    "conflict_message",
    "duty_refusal",
    "is_own_prefecture",
    "permission_conflict",
    "role_conflict",
]

DUTY_ROLES = frozenset({Role.REQUESTER, Role.APPROVER, Role.OPERATOR})
PRIVILEGED_ROLES = frozenset({Role.APPROVER, Role.OPERATOR, Role.REVIEWER, Role.ADMINISTRATOR})
_ONE_STEP_ROLES = frozenset({Role.REQUESTER, Role.COUNTER, Role.AUDITOR})
# what the duty roles do by default: an administrator is refused these whatever the table says
DUTY_ACTIONS: frozenset[Action] = frozenset().union(*(DEFAULT_PERMISSIONS[r] for r in DUTY_ROLES))
# what only the privileged roles (granted by two administrators) may do: their default actions that no one-step
# role also has by default
PRIVILEGED_ACTIONS: frozenset[Action] = frozenset().union(
    *(DEFAULT_PERMISSIONS[r] for r in PRIVILEGED_ROLES)
) - frozenset().union(*(DEFAULT_PERMISSIONS[r] for r in _ONE_STEP_ROLES))


def role_conflict(roles: Iterable[str]) -> list[str]:
    """The duty roles held together with administrator in ``roles`` (sorted), or [] if there is no conflict."""
    held = set(roles)
    if Role.ADMINISTRATOR.value not in held:
        return []
    return sorted(r.value for r in DUTY_ROLES if r.value in held)


def conflict_message(who: str, roles: Iterable[str]) -> str:
    clash = role_conflict(roles)
    return (
        f"{who} would hold administrator together with {', '.join(clash)}: an administrator may not request, "
        "approve or execute flag changes (separation of duties, docs/staff.md)"
    )


def permission_conflict(role: str, action: str) -> str | None:
    """Why the permission table may not give ``role`` the right to ``action``, or None if it may."""
    if action == Action.ADMINISTER.value and role != Role.ADMINISTRATOR.value:
        return "only the administrator role administers (its grants take two administrators)"
    if role == Role.ADMINISTRATOR.value and action in {a.value for a in DUTY_ACTIONS}:
        return f"an administrator may not {action} (separation of duties)"
    if action in {a.value for a in PRIVILEGED_ACTIONS} and role not in {r.value for r in PRIVILEGED_ROLES}:
        return (
            f"{action} belongs to the roles whose grants take two administrators (approver, operator, reviewer); "
            f"the {role} role is granted in one step"
        )
    return None


def duty_refusal(permissions: Mapping[str, Iterable[str]], roles: Iterable[str], action: Action) -> str | None:
    """Why separation of duties refuses ``action`` to someone holding ``roles``, though the agency's table
    (``permissions``) allows it, or None. Old logs can hold what enrolment and grants now refuse: an
    administrator who is also an approver, a table entry giving ``counter`` the right to approve. Such a
    combination stops counting, and the refusal says what to revoke."""
    held = set(roles)
    if Role.ADMINISTRATOR.value in held and action in DUTY_ACTIONS:
        return (
            f"an administrator may not {action.value} (separation of duties): revoke the administrator role or "
            f"have someone else do it (roles held: {', '.join(sorted(held))})"
        )
    if not any(action.value in permissions.get(r, ()) and permission_conflict(r, action.value) is None for r in held):
        return (
            f"only a permission-table entry that separation of duties forbids gives {action.value} to these roles "
            f"({', '.join(sorted(held))}): revoke it (`flagledger permission revoke`)"
        )
    return None


def is_own_prefecture(prefecture: str, agency: str) -> bool:
    """Whether ``prefecture``'s code is that of ``agency``'s prefecture: a municipality's 全国地方公共団体コード
    starts with its prefecture's two digits, and a prefecture's own code is those two digits, ``000`` and a check
    digit (Tokyo 130001 for 131016). An agency without such a code (a support centre) may be co-approved by any
    hosted prefecture."""
    if not (agency.isdigit() and len(agency) == 6):
        return True
    return prefecture.isdigit() and len(prefecture) == 6 and prefecture[:2] == agency[:2] and prefecture[2:5] == "000"
