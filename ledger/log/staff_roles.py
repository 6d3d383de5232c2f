"""Roles at peers: that each person who acted on a flag change held the role for that act in the agency's
shared roster at that point of the log (docs/staff-signing.md, "Roles at peers").

"Verified" means verified for authority too: a signature proves who acted, the roster's ``RoleCertified`` /
``RolesWithdrawn`` events (folded by :class:`ledger.log.staff_roster.RosterState`) prove they were allowed to.
One rule for the local app (before it executes), a peer's ingest (parked ``staff_role``) and ``audit verify``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.domain.staff_acts import APPROVED, EXECUTED, REJECTED, REQUESTED
from ledger.domain.types import Role
from ledger.log.staff_roster import RosterState

__all__ = ["ACT_ROLES", "act_role_problem", "check_roles"]

# the role each act needs (a rejection is an approver's decision)
ACT_ROLES = {
    REQUESTED: Role.REQUESTER.value,
    APPROVED: Role.APPROVER.value,
    REJECTED: Role.APPROVER.value,
    EXECUTED: Role.OPERATOR.value,
}


def act_role_problem(roster: RosterState, act: str, staff: str, *, provisional: bool = False) -> str | None:
    """Why ``staff`` did not hold the role for ``act`` in ``roster`` (None: they did, or the roster records no
    roles — the caller lists that as before roles travelled). An emergency (provisional) flag is requested
    and executed by one operator."""
    if not roster.roles_recorded:
        return None
    needed = Role.OPERATOR.value if provisional and act == REQUESTED else ACT_ROLES.get(act)
    if needed is None:
        return f"{act} is not an act on a flag request"
    if roster.holds(staff, Role.ADMINISTRATOR.value):
        return f"{act} by {staff}: an administrator may not {act} a flag change (separation of duties)"
    if not roster.holds(staff, needed):
        return f"{act} by {staff}: {staff} does not hold {needed} in agency {roster.agency}'s roster at this point"
    return None


def check_roles(roster: RosterState | None, payload: Mapping[str, Any]) -> str | None:
    """Why a flag change's evidence (``payload["evidence"]``, already checked by
    :func:`ledger.log.staff_roster.check_evidence`) names someone who lacked the role for their act (None: each
    held it, or there is nothing to check: no roster, or one that records no roles)."""
    ev = payload.get("evidence")
    if roster is None or not roster.roles_recorded or not isinstance(ev, Mapping):
        return None
    try:
        provisional = ev.get("provisional") is True
        for a in ev["acts"]:
            problem = act_role_problem(roster, str(a["act"]), str(a["staff"]), provisional=provisional)
            if problem is not None:
                return problem
    except (KeyError, TypeError, AttributeError):
        return "malformed staff evidence"
    return None
