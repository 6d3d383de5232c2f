"""The roles a peer checks, written to the agency's shared roster as they take effect and end.

A role a flag act needs (requester, approver, operator) and the administrator role are certified in the
roster (``StaffRoster.RoleCertified``) with the administrators' own staff-key signatures over the grant: the
proposer's alone for requester (a one-step role), the proposer's and a second administrator's — or the
agency's prefecture's break-glass co-approval — for a privileged one. Each withdrawal (a revoked role, a
deactivation) is ``RolesWithdrawn``. Every reader folds them with ``RosterState`` (docs/staff-signing.md,
"Roles at peers"); the app checks each event as a peer will before it writes it. On a log from before staff
signing (no roster yet) nothing is written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from ledger.app.credentials import CredentialCommands
from ledger.app.values import Actor
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import grant_digest, role_statement
from ledger.errors import Code, StateConflict
from ledger.log.staff_roster import ROSTER_ROLES

__all__ = ["RosterRoleCommands"]


class RosterRoleCommands(CredentialCommands):
    """Signing role grants and recording them (and their end) in the roster."""

    def sign_role(
        self, actor: Actor, act: str, grant: UUID, staff: str, role: str, proposer: str
    ) -> dict[str, str] | None:
        """``actor``'s staff-key signature (their unlocked key: session or password) of ``act`` on a grant, or
        None where the roster records no roles or has no place for this one."""
        if role not in ROSTER_ROLES or self.roster(actor.agency) is None:
            return None
        signed = self.signer_for(actor).sign(
            role_statement(act, grant_digest(actor.agency, str(grant), staff, role, proposer))
        )
        return {"staff": actor.staff, "key_id": str(signed["key_id"]), "signature": str(signed["signature"])}

    def certified_role(
        self,
        agency: str,
        grant: UUID,
        staff: str,
        role: str,
        proposer: str,
        proposal: Mapping[str, Any] | None,
        *,
        approval: Mapping[str, Any] | None = None,
        co_approval: Mapping[str, Any] | None = None,
    ) -> StaffRoster | None:
        """The roster with ``RoleCertified`` for this grant added (to save with the grant), checked as a peer
        will check it; None when there is nothing to certify (a local-only role, no roster yet)."""
        state = self.roster(agency)
        if role not in ROSTER_ROLES or state is None:
            return None
        if proposal is None:
            raise StateConflict(
                "this grant was proposed before grants were signed: withdraw it and propose it again",
                code=Code.STAFF_SIGNATURE_REQUIRED,
            )
        certified = {
            "staff": staff,
            "role": role,
            "grant": str(grant),
            "proposed_by": proposer,
            "proposal": dict(proposal),
            "approval": None if approval is None else dict(approval),
            "co_approval": None if co_approval is None else dict(co_approval),
        }
        state.check("RoleCertified", {"certified": certified}, self.roster)
        roster = self.load(StaffRoster, StaffRoster.create_id(agency), "staff roster")
        roster.certify_role(certified=certified)
        return roster

    def withdrawn_roles(self, actor: Actor, who: str, roles: Sequence[str], reason: str) -> StaffRoster | None:
        """The roster with ``RolesWithdrawn`` for those of ``roles`` it gives ``who`` (None: none)."""
        state = self.roster(actor.agency)
        held = sorted(r for r in roles if r in ROSTER_ROLES and state is not None and state.holds(who, r))
        if not held:
            return None
        roster = self.load(StaffRoster, StaffRoster.create_id(actor.agency), "staff roster")
        roster.withdraw_roles(staff=who, roles=held, reason=reason, by=actor.staff)
        return roster
