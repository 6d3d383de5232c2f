"""Roles at peers: that each person who acted on a flag change held the role for that act in the agency's
shared roster at that point of the log (docs/staff-signing.md, "Roles at peers").

"Verified" means verified for authority too: a signature proves who acted, the roster's ``RoleCertified`` /
``RolesWithdrawn`` events (folded by :class:`ledger.log.staff_roster.RosterState`) prove they were allowed to.
One rule for the local app (before it executes), a peer's ingest (parked ``staff_role``) and ``audit verify`` —
and, for the four-eyes decision on a query the hub marked for staff (the consultation's ``staff_answer``), for
the provider's node before it approves and sends and the hub before it relays (:func:`decision_role_problem`).
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


# the roster roles that decide a staff answer: a reviewer proposes (``propose_decision``), an approver approves
# (``approve_held``) — each certified in the shared roster (docs/staff-signing.md, "Decisions the hub relays")
DECIDES = (Role.REVIEWER.value, Role.APPROVER.value)


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


def _held(roster: RosterState, staff: str) -> str:
    held = sorted(r for r in DECIDES if roster.holds(staff, r))
    return f"{staff} holds {' and '.join(held)}" if held else f"{staff} holds neither"


def decision_role_problem(roster: RosterState, staff: tuple[str, str]) -> str | None:
    """Why the two people who signed a consultation's decision (the reviewer's proposal and the approver's
    approval, both over one statement) lacked the authority for it in ``roster`` as it stands (None: they had it).

    The rule (:data:`DECIDES`): two distinct people, **one holding reviewer and the other approver** in the
    roster at this point — both privileged roles, each certified only with a second administrator's signature
    (or a prefecture's break-glass co-approval) — and **neither an administrator** (separation of duties, as for
    flag acts). Both halves sign one statement, so which signed first proves nothing: either may be the
    reviewer. A role withdrawn before this point does not count.

    Threats: an administrator or insider at the provider enrolling sock accounts (keys one administrator's
    signature certifies) and deciding with two of them, with two approvers and no reviewer, or with their own
    administrator's key; a peer agency (or shell user) holding the provider's node key sending a grant that one
    administrator signed alone — it certifies nothing. Run by the provider's node before it approves and before
    it sends (``consumers/linkage_decisions.py``) and by the hub before it relays
    (``ledger.linkage.consultation.check_decision``).

    Old rosters: one that records no roles (opened before roles travelled) proves no authority at all, and one
    that never certified a reviewer (its reviewers granted before reviewer travelled hold it only locally)
    proves no reviewer: either way the decision is refused, with a reason naming the legacy case — never
    accepted as before (decisions through the hub are newer than roles in the roster; re-grant reviewer)."""
    if not roster.roles_recorded:
        return f"agency {roster.agency}'s roster records no roles: who may decide a staff answer is not proven"
    if staff[0] == staff[1]:
        return f"{staff[0]} signed both halves: four eyes are two people"
    for who in staff:
        separated = _separated(roster, APPROVED, who, "a staff answer")
        if separated is not None:
            return separated
    reviewer, approver = DECIDES
    for one, other in (staff, staff[::-1]):
        if roster.holds(one, reviewer) and roster.holds(other, approver):
            return None
    problem = (
        f"a staff answer needs one signer holding {reviewer} and the other {approver} in agency {roster.agency}'s "
        f"roster at this point: {_held(roster, staff[0])}, {_held(roster, staff[1])}"
    )
    if not any(reviewer in held for held in roster.roles.values()):
        problem += (
            f" (before_reviewer_roles: the roster certifies no {reviewer}; one granted before reviewers were "
            "recorded holds it only locally — revoke it and grant it again, two administrators)"
        )
    return problem
