"""Set-up commands: agencies (hosted and remote), staff and roles, permissions, the approval policy, key
rotation and revocation, and signing checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from cryptography.hazmat.primitives import serialization

from ledger.app.accounts import staff_role
from ledger.app.break_glass import CoApprovalCommands
from ledger.app.checkpoints import Checkpoint, sign_checkpoint
from ledger.app.roles import GrantView
from ledger.app.values import SYSTEM, Actor
from ledger.domain.accounts import SystemAccount
from ledger.domain.agencies import Agency, Staff
from ledger.domain.duties import PRIVILEGED_ROLES
from ledger.domain.keys import KeyRegistry
from ledger.domain.types import (
    Action,
    AgencyKind,
    Role,
    agency_code,
    parse_enum,
    staff_id,
)
from ledger.errors import (
    ConfigurationError,
    InputError,
    StateConflict,
    UntrustedKeyError,
)
from ledger.log.signing import Signer, key_id_for, public_key_from_hex


class AgencyCommands(CoApprovalCommands):
    """Agencies, staff, permissions, approval policy, signing keys and checkpoints."""

    # -- set-up ---------------------------------------------------------------------------------
    def register_agency(
        self,
        code: str,
        name: str,
        kind: str,
        *,
        administrator: str,
        approvals_required: int = 1,
        second_administrator: str | None = None,
    ) -> str:
        """Register a hosted agency with its first administrator (and, if given, its second: privileged role
        grants take two administrators, docs/staff.md) and its self-signed key (``init``)."""
        agency_code(code)
        administrators = [staff_id(administrator)]
        if second_administrator is not None:
            administrators.append(staff_id(second_administrator, "second administrator"))
            if second_administrator == administrator:
                raise InputError("the second administrator must be another person", field="second administrator")
        parse_enum(AgencyKind, kind, "agency kind")
        signer = self.signers.get(code)
        if signer is None:
            raise ConfigurationError(f"no signing key for agency {code} on this node")
        if self.find(Agency, Agency.create_id(code)) is not None:
            raise StateConflict(f"agency {code} is already registered")
        registry = KeyRegistry(agency=code)
        anchor = self._anchors[signer.key_id]
        registry.add_key(
            key_id=signer.key_id, public_hex=signer.public_raw.hex(), valid_from=anchor.valid_from.isoformat()
        )
        self.save_as(code, registry)
        agency = Agency(code=code, name=name, kind=kind, approvals_required=approvals_required)
        admins = [
            Staff(
                id=self.ids.staff(code, who),
                agency=code,
                staff_id=who,
                name=who,
                roles=[Role.ADMINISTRATOR.value],
                by=SYSTEM,
            )
            for who in administrators
        ]
        self.save_as(code, agency, *admins)
        # the first administrator's one-time enrolment code: whoever completes it is the roster's root
        # (docs/staff-signing.md); printed by `flagledger init`, never stored. A second administrator gets
        # theirs from the first, once activated (`flagledger staff code`), signed like every later code.
        self.first_codes[code] = self.issue_root_code(code, administrator)
        return code

    def register_remote_agency(
        self,
        actor: Actor,
        code: str,
        name: str,
        kind: str,
        key_id: str,
        public_hex: str,
        valid_from: datetime,
    ) -> None:
        """Vouch for another agency's first key, exchanged out of band (the trust anchor for its events)."""
        self.authorise(actor, Action.ADMINISTER)
        agency_code(code)
        parse_enum(AgencyKind, kind, "agency kind")
        public = public_key_from_hex(public_hex)  # refuse a malformed key before anything is recorded
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if key_id != key_id_for(code, raw):
            raise UntrustedKeyError("the key id does not match that agency and public key")
        registry = self.load(KeyRegistry, KeyRegistry.create_id(actor.agency), "key registry")
        registry.trust_remote(
            remote_agency=code,
            key_id=key_id,
            public_hex=public_hex,
            valid_from=valid_from.isoformat(),
            by=actor.staff,
        )
        self.save_as(actor.agency, registry)

    def enroll_staff(self, actor: Actor, who: str, name: str, roles: Sequence[str]) -> str:
        """Enrol ``who``; a privileged role among ``roles`` becomes a pending grant (see :meth:`enrol`)."""
        self.enrol(actor, who, name, roles)
        return who

    def enrol(self, actor: Actor, who: str, name: str, roles: Sequence[str]) -> list[GrantView]:
        """Enrol ``who`` with the one-step roles of ``roles`` and propose the privileged ones (approver,
        operator, administrator: a second administrator approves, ledger/app/roles.py), all in one batch.
        Returns the pending grants."""
        self.authorise(actor, Action.ADMINISTER)
        staff_id(who)
        parsed = sorted({staff_role(r).value for r in roles})  # never a system kind's role (issue 18)
        self.check_role_set(who, parsed)
        sid = self.ids.staff(actor.agency, who)
        if self.find(Staff, sid) is not None:
            raise StateConflict("that staff id is already enrolled at this agency")
        if self.find(SystemAccount, self.ids.system_account(actor.agency, who)) is not None:
            raise StateConflict("a system account of this agency has that id: choose another for the staff member")
        now, later = self.split_privileged(parsed)
        member = Staff(id=sid, agency=actor.agency, staff_id=who, name=name, roles=now, by=actor.staff)
        grants = self.proposals(actor, who, later, "at enrolment", at_enrolment=True)
        self.save_as(actor.agency, member, *grants, *self.one_step_roles(actor, who, now))
        return [GrantView.of(g) for g in grants]

    def grant_role(self, actor: Actor, who: str, role: str) -> UUID | None:
        """Grant a one-step role at once (None); a privileged one is proposed and its pending grant's id
        returned (a second administrator approves it: :meth:`approve_grant`)."""
        self.authorise(actor, Action.ADMINISTER)
        wanted = staff_role(role)  # never a system kind's role (issue 18)
        if wanted in PRIVILEGED_ROLES:
            return self.propose_role(actor, who, wanted.value)
        member = self.staff(actor.agency, who)
        member.grant_role(wanted, by=actor.staff)
        self.save_as(actor.agency, member, *self.one_step_roles(actor, who, [wanted.value]))
        return None

    def revoke_role(self, actor: Actor, who: str, role: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        member = self.staff(actor.agency, who)
        wanted = parse_enum(Role, role, "role")
        member.revoke_role(wanted, by=actor.staff)
        roster = self.withdrawn_roles(actor, who, [wanted.value], "revoked")
        self.save_as(actor.agency, member, *([roster] if roster is not None else []))

    def deactivate_staff(self, actor: Actor, who: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        member = self.staff(actor.agency, who)
        held = list(member.roles)
        member.deactivate(by=actor.staff)
        roster = self.withdrawn_roles(actor, who, held, "deactivated")
        self.save_as(actor.agency, member, *([roster] if roster is not None else []))
        self.revoke_staff_keys(actor, who, "deactivated")

    def grant_permission(self, actor: Actor, role: str, action: str) -> None:
        agency, _ = self.authorise(actor, Action.ADMINISTER)
        agency.grant(parse_enum(Role, role, "role"), parse_enum(Action, action, "action"), by=actor.staff)
        self.save_as(actor.agency, agency)

    def revoke_permission(self, actor: Actor, role: str, action: str) -> None:
        agency, _ = self.authorise(actor, Action.ADMINISTER)
        agency.revoke(parse_enum(Role, role, "role"), parse_enum(Action, action, "action"), by=actor.staff)
        self.save_as(actor.agency, agency)

    def set_approval_policy(self, actor: Actor, approvals_required: int) -> None:
        agency, _ = self.authorise(actor, Action.ADMINISTER)
        agency.set_approvals_required(approvals_required, by=actor.staff)
        self.save_as(actor.agency, agency)

    # -- keys -------------------------------------------------------------------------------------
    def rotate_key(self, actor: Actor, new_signer: Signer, valid_from: datetime) -> str:
        """Announce ``new_signer`` (signed by the current key); retire the current one at ``valid_from``."""
        self.authorise(actor, Action.ADMINISTER)
        old = self.signers[actor.agency]
        registry = self.load(KeyRegistry, KeyRegistry.create_id(actor.agency), "key registry")
        registry.add_key(
            key_id=new_signer.key_id,
            public_hex=new_signer.public_raw.hex(),
            valid_from=valid_from.isoformat(),
        )
        registry.retire(old.key_id, valid_until=(valid_from + timedelta(days=1)).isoformat())
        self.save_as(actor.agency, registry)
        self.signers[actor.agency] = new_signer
        self.signed_mapper.signers[actor.agency] = new_signer
        return new_signer.key_id

    def revoke_key(self, actor: Actor, key_id: str, reason: str, effective_from: datetime | None = None) -> None:
        self.authorise(actor, Action.ADMINISTER)
        if self.signers[actor.agency].key_id == key_id:
            raise StateConflict("rotate to a new key before revoking the current one")
        registry = self.load(KeyRegistry, KeyRegistry.create_id(actor.agency), "key registry")
        registry.revoke(key_id, (effective_from or self.clock()).isoformat(), reason, by=actor.staff)
        self.save_as(actor.agency, registry)

    # -- checkpoints ------------------------------------------------------------------------------------
    def sign_checkpoint(self, agency: str | None = None, *, force: bool = False) -> list[Checkpoint]:
        """ "Checkpoint now": sign the log as it stands for ``agency`` (default: every hosted agency).

        Returns the :class:`ledger.app.checkpoints.Checkpoint` objects signed (none if nothing new was logged).
        """
        return sign_checkpoint(self, agency, force=force)
