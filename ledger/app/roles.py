"""Role grants that take two administrators, and the break-glass co-approval of an agency with only one.

Granting approver, operator, reviewer or administrator (``PRIVILEGED_ROLES``) records a :class:`RoleGrant` proposal;
the role takes effect when a second administrator of the same agency approves it, in the same sealed batch as
the member's ``Staff.RoleGranted``. Enrolling someone with a privileged role enrols them without it plus a
pending grant. The rules, and why: :mod:`ledger.domain.duties`, docs/staff.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from ledger.app.accounts import staff_role
from ledger.app.roster_roles import RosterRoleCommands
from ledger.app.values import Actor
from ledger.domain.agencies import Staff
from ledger.domain.duties import PRIVILEGED_ROLES, conflict_message, role_conflict
from ledger.domain.role_grants import GrantStatus, RoleGrant, is_own_prefecture
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import APPROVED_ROLE, PROPOSED_ROLE
from ledger.domain.types import Action, AgencyKind, Role
from ledger.errors import Code, NotFoundError, RuleViolation, StateConflict
from ledger.log.staff_roster import ROSTER_ROLES

__all__ = ["BREAK_GLASS_KINDS", "GrantView", "RoleGrantCommands", "is_own_prefecture"]

_ENROLLED = "ledger.domain.agencies:Staff.Enrolled"
_PROPOSED = "ledger.domain.role_grants:RoleGrant.Proposed"
# who may co-approve for an agency with a single administrator: its prefecture (the example); a
# national body is not a municipality's supervisor, a peer municipality could be the same person's other hat
BREAK_GLASS_KINDS = frozenset({AgencyKind.PREFECTURE.value})


@dataclass(frozen=True)
class GrantView:
    id: UUID
    agency: str
    staff: str
    role: str
    status: str
    proposed_by: str
    decided_by: str | None
    decided_by_agency: str | None
    at_enrolment: bool

    @classmethod
    def of(cls, g: RoleGrant) -> GrantView:
        return cls(
            g.id,
            g.agency,
            g.staff_id,
            g.role,
            g.status,
            g.proposed_by,
            g.decided_by,
            g.decided_by_agency,
            g.at_enrolment,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "grant": str(self.id),
            "staff": f"{self.agency}/{self.staff}",
            "role": self.role,
            "status": self.status,
            "proposed_by": self.proposed_by,
            "decided_by": self.decided_by
            if self.decided_by_agency in (None, self.agency)
            else f"{self.decided_by_agency}/{self.decided_by} (break-glass)",
        }


class RoleGrantCommands(RosterRoleCommands):
    """Proposing, approving, rejecting and withdrawing grants of privileged roles."""

    def check_role_set(self, who: str, roles: Sequence[str]) -> None:
        if role_conflict(roles):
            raise RuleViolation(conflict_message(who, roles), code=Code.ROLE_CONFLICT)

    def split_privileged(self, roles: Sequence[str]) -> tuple[list[str], list[str]]:
        """(roles granted at once, roles that need a second administrator)."""
        now = [r for r in roles if Role(r) not in PRIVILEGED_ROLES]
        later = [r for r in roles if Role(r) in PRIVILEGED_ROLES]
        return now, later

    def proposals(self, actor: Actor, who: str, roles: Sequence[str], note: str, at_enrolment: bool) -> list[RoleGrant]:
        """Grants of ``roles`` to ``who`` proposed by ``actor``, each signed by the proposer's staff key (the
        first half of what certifies it in the roster)."""
        out = []
        for r in roles:
            gid = uuid4()
            out.append(
                RoleGrant(
                    id=gid,
                    agency=actor.agency,
                    staff_id=who,
                    role=r,
                    proposed_by=actor.staff,
                    note=note,
                    at_enrolment=at_enrolment,
                    signature=self.sign_role(actor, PROPOSED_ROLE, gid, who, r, actor.staff),
                )
            )
        return out

    def one_step_roles(self, actor: Actor, who: str, roles: Sequence[str]) -> list[StaffRoster]:
        """The roster's certification of one-step roles ``actor`` gives ``who`` at once (requester; the other
        one-step roles stay local), signed by ``actor`` alone."""
        # the only one-step role a peer checks is requester: at most one event, on one roster aggregate
        if Role.REQUESTER.value not in roles:
            return []
        role = Role.REQUESTER.value
        gid = uuid4()
        proposal = self.sign_role(actor, PROPOSED_ROLE, gid, who, role, actor.staff)
        roster = self.certified_role(actor.agency, gid, who, role, actor.staff, proposal)
        return [] if roster is None else [roster]

    def roles_start_recorded(self, agency: str) -> bool:
        """A roster opened on a log whose staff already hold roles a flag act needs (enrolled before staff
        signing) does not record roles: they were never certified (``audit verify`` lists such flag changes). A
        reviewer of such a log does not stop it: no flag act needs reviewer, and an uncertified reviewer decides
        no staff answer (``before_reviewer_roles``, ledger/log/staff_roles.py) until granted again."""
        local = {Role.ADMINISTRATOR.value, Role.REVIEWER.value}
        for i in self._streams(_ENROLLED, agency):
            member = self.load(Staff, i, "staff member")
            if member.active and any(r in ROSTER_ROLES and r not in local for r in member.roles):
                return False
        return True

    def propose_role(self, actor: Actor, who: str, role: str, note: str = "") -> UUID:
        """Record that ``actor`` proposes giving ``who`` the privileged ``role``; returns the grant's id."""
        self.authorise(actor, Action.ADMINISTER)
        wanted = staff_role(role)  # never a system kind's role (issue 18)
        member = self.staff(actor.agency, who)
        self._check_grantable(member, wanted)
        if any(g.staff == who and g.role == wanted.value for g in self.role_grants(actor)):
            raise StateConflict(f"a grant of {wanted.value} to {who} is already pending", code=Code.CONFLICT)
        (grant,) = self.proposals(actor, who, [wanted.value], note, at_enrolment=False)
        self.save_as(actor.agency, grant)
        return grant.id

    def approve_grant(self, actor: Actor, grant_id: UUID, note: str = "", *, break_glass: bool = False) -> GrantView:
        """A second administrator of the agency approves (or, ``break_glass``, a prefecture's hosted here
        co-approves; from the prefecture's own node: :meth:`CoApprovalCommands.approve_grant_from`)."""
        self.authorise(actor, Action.ADMINISTER)
        grant = self.load(RoleGrant, grant_id, "role grant")
        if break_glass:
            self._check_break_glass(actor, grant)
        elif grant.agency != actor.agency:
            raise self._unknown("role grant", grant_id)  # another agency's grant: as if there were none
        member = self._grantable_member(grant)
        args = (grant.agency, grant.id, grant.staff_id, grant.role, grant.proposed_by, grant.signature)
        if break_glass:
            grant.check_break_glass(actor.agency, note)
            co = self.hosted_co_approval(actor, grant, note)
            roster = self.certified_role(*args, co_approval=co)
            grant.approve_break_glass(actor.staff, actor.agency, note, co_approval=co)
            by = f"{actor.agency}/{actor.staff}"  # not a staff id of this agency: never mistaken for one
        else:
            grant.approve(actor.staff, note)  # (refuses the proposer before anything is signed)
            approval = self.sign_role(actor, APPROVED_ROLE, grant.id, grant.staff_id, grant.role, grant.proposed_by)
            roster = self.certified_role(*args, approval=approval)
            by = actor.staff
        member.grant_role(Role(grant.role), by=by)
        self.save_as(grant.agency, grant, member, *([roster] if roster is not None else []))
        return GrantView.of(grant)

    def hosted_co_approval(self, actor: Actor, grant: RoleGrant, note: str) -> dict[str, str] | None:
        """A prefecture's administrator hosted here co-approving (break-glass): signed with their own staff
        key like one from the prefecture's own node (``CoApprovalCommands.co_approve``), so a peer checks it;
        None on a log from before staff signing."""
        raise NotImplementedError  # CoApprovalCommands (ledger/app/break_glass.py), which signs co-approvals

    def reject_grant(self, actor: Actor, grant_id: UUID, reason: str = "") -> GrantView:
        grant = self._own_grant(actor, grant_id)
        grant.reject(actor.staff, reason)
        self.save_as(actor.agency, grant)
        return GrantView.of(grant)

    def withdraw_grant(self, actor: Actor, grant_id: UUID, reason: str = "") -> GrantView:
        grant = self._own_grant(actor, grant_id)
        grant.withdraw(actor.staff, reason)
        self.save_as(actor.agency, grant)
        return GrantView.of(grant)

    def role_grants(self, actor: Actor, *, pending_only: bool = True) -> list[GrantView]:
        """The agency's role grants (pending ones by default), oldest first, read from the verified log."""
        self.authorise(actor, Action.ADMINISTER)
        found = [GrantView.of(self.load(RoleGrant, i, "role grant")) for i in self._streams(_PROPOSED, actor.agency)]
        return [g for g in found if g.status == GrantStatus.PENDING or not pending_only]

    def active_administrators(self, agency: str) -> list[str]:
        """Staff ids of ``agency``'s active administrators (read from the verified log, not a view)."""
        out = []
        for i in self._streams(_ENROLLED, agency):
            member = self.load(Staff, i, "staff member")
            if member.active and Role.ADMINISTRATOR.value in member.roles:
                out.append(member.staff_id)
        return sorted(out)

    # -- helpers ----------------------------------------------------------------------------------
    def _own_grant(self, actor: Actor, grant_id: UUID) -> RoleGrant:
        self.authorise(actor, Action.ADMINISTER)
        return self._own(self.load(RoleGrant, grant_id, "role grant"), actor, "role grant")

    def _grantable_member(self, grant: RoleGrant) -> Staff:
        """The member an open ``grant`` gives its role to, checked before anything changes (a refusal changes
        nothing): the proposer still an active administrator, the role still grantable."""
        grant.check_open()
        member = self.staff(grant.agency, grant.staff_id)
        proposer = self.find(Staff, self.ids.staff(grant.agency, grant.proposed_by))
        if proposer is None or not proposer.active or Role.ADMINISTRATOR.value not in proposer.roles:
            raise StateConflict("the proposer is no longer an active administrator: propose the grant again")
        self._check_grantable(member, Role(grant.role))
        return member

    def _check_single_administrator(self, agency: str) -> None:
        admins = self.active_administrators(agency)
        if len(admins) != 1:
            raise RuleViolation(
                f"{agency} has {len(admins)} active administrators: break-glass is only for an agency with "
                "a single one (a second administrator of that agency approves)",
                code=Code.BREAK_GLASS_REFUSED,
            )

    def _check_grantable(self, member: Staff, role: Role) -> None:
        if not member.active:
            raise StateConflict(f"{member.staff_id} is deactivated")
        if role.value in member.roles:
            raise StateConflict(f"{member.staff_id} already has role {role}")
        self.check_role_set(member.staff_id, [*member.roles, role.value])

    def _check_break_glass(self, actor: Actor, grant: RoleGrant) -> None:
        if grant.agency == actor.agency:
            raise RuleViolation(
                "break-glass is a co-approval by another agency: a second administrator of this agency approves",
                code=Code.BREAK_GLASS_REFUSED,
            )
        if self.agency(actor.agency).kind not in BREAK_GLASS_KINDS:
            raise RuleViolation(
                f"only a prefecture's administrator co-approves (break-glass); {actor.agency} is not one",
                code=Code.BREAK_GLASS_REFUSED,
            )
        if not self.ids.hosts(grant.agency):
            raise NotFoundError("unknown role grant")
        if not is_own_prefecture(actor.agency, grant.agency):
            raise RuleViolation(
                f"{actor.agency} is not the prefecture of {grant.agency} (local government codes: same first two "
                "digits, 000 after them)",
                code=Code.BREAK_GLASS_REFUSED,
            )
        self._check_single_administrator(grant.agency)

    def _streams(self, topic: str, agency: str) -> Iterator[UUID]:
        """Ids of the streams opened by ``topic`` events signed by ``agency`` (local, so only hosted ones)."""
        start = 1
        while True:
            rows = self.recorder.select_notifications(start=start, limit=1000, topics=[topic])
            for n in rows:
                if self.signed_mapper.open(n.state).header.origin == agency:
                    yield UUID(str(n.originator_id))
            if len(rows) < 1000:
                return
            start = rows[-1].id + 1
