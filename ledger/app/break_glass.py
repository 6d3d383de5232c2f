"""Break-glass from the prefecture's own node: a co-approval signed with its administrator's staff key.

A municipality with a single administrator cannot reach a second one, so its prefecture co-approves
(docs/staff.md). When the prefecture runs its own node, nothing of it is hosted here to act locally; instead:

1. the municipality's administrator exports the pending grant (:meth:`CoApprovalCommands.export_grant`: its
   agency, id, staff, role, proposer and their :func:`~ledger.domain.staff_acts.grant_digest`);
2. the prefecture's administrator, signed in on the prefecture's node, checks it and signs a co-approval with
   their own staff key (:meth:`~CoApprovalCommands.co_approve`);
3. the municipality's administrator records it (:meth:`~CoApprovalCommands.approve_grant_from`): this node
   checks the prefecture (registered here, kind prefecture, this municipality's), the key (certified in the
   prefecture's roster, as received from the prefecture, for that person, not revoked, an administrator's),
   the signature over this grant's recomputed digest and the note, and that the agency still has exactly one
   active administrator. ``RoleGrant.BreakGlassApproved`` embeds the co-approval, so ``audit verify``
   checks it again.

Neither this node's keys nor a key of the municipality's administrator is certified in the prefecture's roster,
so the lone administrator cannot make a co-approval this node accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ledger.app.credentials import CredentialCommands
from ledger.app.roles import BREAK_GLASS_KINDS, GrantView, RoleGrantCommands, is_own_prefecture
from ledger.app.values import Actor
from ledger.domain.role_grants import RoleGrant
from ledger.domain.staff_acts import CO_APPROVAL, co_approval_statement, grant_digest, note_digest
from ledger.domain.types import Action, Role
from ledger.errors import Code, FlagLedgerError, InputError, RuleViolation
from ledger.log.co_approval import check_co_approval, recorded

__all__ = ["CoApprovalCommands"]


def _refused(message: str) -> RuleViolation:
    return RuleViolation(message, code=Code.BREAK_GLASS_REFUSED)


def _digest_of(grant: RoleGrant) -> str:
    return grant_digest(grant.agency, str(grant.id), grant.staff_id, grant.role, grant.proposed_by)


class CoApprovalCommands(RoleGrantCommands, CredentialCommands):
    """The three steps of a break-glass co-approval between two nodes."""

    def export_grant(self, actor: Actor, grant_id: UUID) -> dict[str, str]:
        """What the agency's administrator hands its prefecture: the pending grant and its digest."""
        grant = self._own_grant(actor, grant_id)
        grant.check_open()
        return {
            "agency": grant.agency,
            "grant": str(grant.id),
            "staff": grant.staff_id,
            "role": grant.role,
            "proposed_by": grant.proposed_by,
            "digest": _digest_of(grant),
        }

    def co_approve(self, actor: Actor, exported: Mapping[str, Any], note: str) -> dict[str, str]:
        """The prefecture's administrator ``actor`` signs a co-approval of the exported grant with their own
        staff key (unlocked: their session or password). ``exported`` needs agency, grant and digest; with
        staff, role and proposer too, the digest is checked against them (what the administrator read)."""
        self.authorise(actor, Action.ADMINISTER)
        try:
            agency, grant, digest = str(exported["agency"]), str(UUID(str(exported["grant"]))), str(exported["digest"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"the exported grant needs agency, grant and digest ({exc})", field="grant") from None
        if self.agency(actor.agency).kind not in BREAK_GLASS_KINDS:
            raise _refused(f"only a prefecture's administrator co-approves (break-glass); {actor.agency} is not one")
        if agency == actor.agency or not is_own_prefecture(actor.agency, agency):
            raise _refused(f"{actor.agency} is not the prefecture of {agency}")
        if all(k in exported for k in ("staff", "role", "proposed_by")):
            fields = (str(exported["staff"]), str(exported["role"]), str(exported["proposed_by"]))
            if grant_digest(agency, grant, *fields) != digest:
                raise InputError("the grant's digest does not match its staff, role and proposer", field="digest")
        if not note.strip():
            raise InputError("break-glass needs a note saying why (who asked, how it was confirmed)", field="note")
        signer = self.signer_for(actor)
        roster = self.roster(actor.agency)
        cert = roster.keys.get(signer.key_id) if roster is not None else None
        if cert is None or not cert.certifies:
            raise _refused(f"{actor}'s staff key was not certified as an administrator's: ask for a new enrolment code")
        at = datetime.now(UTC).isoformat()
        noted = note_digest(note)
        statement = co_approval_statement(actor.agency, actor.staff, signer.key_id, agency, grant, digest, noted, at)
        return {
            "co_approval": CO_APPROVAL,
            "prefecture": actor.agency,
            "staff": actor.staff,
            "key_id": signer.key_id,
            "agency": agency,
            "grant": grant,
            "digest": digest,
            "note": note,
            "note_digest": noted,
            "at": at,
            "signature": signer.sign(statement)["signature"],
        }

    def hosted_co_approval(self, actor: Actor, grant: RoleGrant, note: str) -> dict[str, str] | None:
        if self.roster(grant.agency) is None or self.roster(actor.agency) is None:
            return None  # a log from before staff signing: the hosted prefecture acts on this node's word
        exported = {"agency": grant.agency, "grant": str(grant.id), "digest": _digest_of(grant)}
        return recorded(self.co_approve(actor, exported, note))

    def approve_grant_from(self, actor: Actor, grant_id: UUID, co: Mapping[str, Any]) -> GrantView:
        """The agency's administrator records its prefecture's signed co-approval ``co`` of grant
        ``grant_id``: the role takes effect, granted by PREFECTURE/STAFF (break-glass)."""
        grant = self._own_grant(actor, grant_id)
        member = self._grantable_member(grant)
        prefecture, note = str(co.get("prefecture", "")), str(co.get("note", ""))
        try:
            kind = self.agency(prefecture).kind
        except FlagLedgerError:
            raise _refused(f"{prefecture or 'the co-approving agency'} is not an agency registered here") from None
        if kind not in BREAK_GLASS_KINDS:
            raise _refused(f"only a prefecture co-approves (break-glass); {prefecture} is not one")
        if prefecture == grant.agency or not is_own_prefecture(prefecture, grant.agency):
            raise _refused(f"{prefecture} is not the prefecture of {grant.agency}")
        problem = check_co_approval(self.roster(prefecture), co, grant.agency, str(grant.id), _digest_of(grant), note)
        if problem is not None:
            raise _refused(f"the co-approval is refused: {problem}")
        self._check_single_administrator(grant.agency)
        by, embedded = str(co["staff"]), recorded(co)
        roster = self.certified_role(
            grant.agency, grant.id, grant.staff_id, grant.role, grant.proposed_by, grant.signature, co_approval=embedded
        )
        grant.approve_break_glass(by, prefecture, note, co_approval=embedded)
        member.grant_role(Role(grant.role), by=f"{prefecture}/{by}")
        self.save_as(grant.agency, grant, member, *([roster] if roster is not None else []))
        return GrantView.of(grant)
