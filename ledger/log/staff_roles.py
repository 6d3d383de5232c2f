"""Roles at peers: that each person who acted on a flag change held the role for that act in the agency's
shared roster at that point of the log (docs/staff-signing.md, "Roles at peers").

"Verified" means verified for authority too: a signature proves who acted, the roster's ``RoleCertified`` /
``RolesWithdrawn`` events (folded by :class:`ledger.log.staff_roster.RosterState`) prove they were allowed to.
One rule for the local app (before it executes), a peer's ingest (parked ``staff_role``) and ``audit verify`` —
and, for the four-eyes decision on a query the hub marked for staff (the consultation's ``staff_answer``), for
the provider before it sends and the hub before it relays (:func:`decision_role_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.domain.staff_acts import APPROVED, EXECUTED, REJECTED, REQUESTED
from ledger.domain.types import Role
from ledger.log.staff_roster import RosterState

__all__ = ["ACT_ROLES", "DECIDES", "act_role_problem", "check_roles", "decision_role_problem"]

# the role each act needs (a rejection is an approver's decision)
ACT_ROLES = {
    REQUESTED: Role.REQUESTER.value,
    APPROVED: Role.APPROVER.value,
    REJECTED: Role.APPROVER.value,
    EXECUTED: Role.OPERATOR.value,
}


# the roster role that decides a staff answer: the approval of a held request (approve_held) is the approver's;
# the proposal before it is the reviewer's, a local role the roster does not record (docs/staff-signing.md)
DECIDES = Role.APPROVER.value


def _separated(roster: RosterState, act: str, staff: str, what: str = "a flag change") -> str | None:
    if roster.holds(staff, Role.ADMINISTRATOR.value):
        return f"{act} by {staff}: an administrator may not {act} {what} (separation of duties)"
    return None


def act_role_problem(roster: RosterState, act: str, staff: str, *, provisional: bool = False) -> str | None:
    """Why ``staff`` did not hold the role for ``act`` in ``roster`` (None: they did, or the roster records no
    roles — the caller lists that as before roles travelled). An emergency (provisional) flag is requested
    and executed by one operator."""
    if not roster.roles_recorded:
        return None
    needed = Role.OPERATOR.value if provisional and act == REQUESTED else ACT_ROLES.get(act)
    if needed is None:
        return f"{act} is not an act on a flag request"
    separated = _separated(roster, act, staff)
    if separated is not None:
        return separated
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


def decision_role_problem(roster: RosterState, staff: tuple[str, str]) -> str | None:
    """Why the two people who signed a consultation's decision (the reviewer's proposal and the approver's
    approval, both over one statement) lacked the authority for it in ``roster`` as it stands (None: they had it).

    A staff answer is an approver's decision (:data:`DECIDES`, the role of ``approve_held``): one of the two must
    hold approver — a privileged role, certified only with a second administrator's signature (or a prefecture's
    break-glass co-approval) — and neither may be an administrator (separation of duties, as for flag acts). The
    other half is a reviewer's proposal; reviewer stays local, so for it the roster proves a certified person,
    not the role. Threat: an administrator or insider enrolling a sock account, or a peer agency's stolen node
    key, making a decision with two certified keys but no approver's authority. A roster that records no roles
    proves no authority at all, so it decides nothing (unlike a flag change's, listed as before roles
    travelled: decisions through the hub are newer than roles in the roster)."""
    if not roster.roles_recorded:
        return f"agency {roster.agency}'s roster records no roles: who may decide a staff answer is not proven"
    for who in staff:
        separated = _separated(roster, APPROVED, who, "a staff answer")
        if separated is not None:
            return separated
    problems = [act_role_problem(roster, APPROVED, who) for who in staff]
    if all(problems):
        return f"neither {staff[0]} nor {staff[1]} holds {DECIDES} in agency {roster.agency}'s roster at this point"
    return None
