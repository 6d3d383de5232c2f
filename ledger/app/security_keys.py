"""Staff members' WebAuthn security keys: registering one, the sign-ins that used one, removing one — and
certifying each in the agency's roster, so that the acts it signs (the console's per-act assertions) are
checked by every reader (docs/staff-signing.md, "Security keys").

The WebAuthn ceremonies themselves (challenges, attestation and assertion checks) are the console's
(:mod:`ledger.api.webauthn_keys`); here are the records and the rules on them.
"""

from __future__ import annotations

import secrets
from typing import Any

from ledger.app.credentials import CredentialCommands
from ledger.app.values import Actor
from ledger.domain.roster import StaffRoster
from ledger.domain.security_keys import SecurityKeys
from ledger.domain.staff_acts import security_key_statement
from ledger.domain.types import Action
from ledger.errors import Code, IntegrityError, PermissionDenied
from ledger.log.staff_roster import KeyCert

__all__ = ["SecurityKeyCommands"]


class SecurityKeyCommands(CredentialCommands):
    def _keys_of(self, agency: str, staff: str) -> SecurityKeys | None:
        return self.find(SecurityKeys, SecurityKeys.id_for(self.ids.staff(agency, staff)))

    def security_keys(self, agency: str, staff: str) -> dict[str, dict[str, Any]]:
        """credential id → {cose_key, counter} of the keys ``staff`` registered (none: an empty dict)."""
        self.staff(agency, staff)  # an unknown or foreign staff member is NotFound, not "no keys"
        found = self._keys_of(agency, staff)
        return {c: dict(k) for c, k in found.keys.items()} if found is not None else {}

    def certified_security_keys(self, agency: str, staff: str, rp_id_hash: str | None = None) -> list[KeyCert]:
        """The security keys certified for ``staff`` in the roster and not revoked (for ``rp_id_hash``'s
        relying party only, if given): those that sign their acts in the console."""
        roster = self.roster(agency)
        found = roster.security_keys(staff) if roster is not None else []
        return [c for c in found if rp_id_hash is None or c.rp_id_hash == rp_id_hash]

    def register_security_key(
        self, actor: Actor, credential: str, cose_key: str, counter: int, rp_id_hash: str
    ) -> None:
        """``actor`` registers a key they hold (the console checked the attestation in their own session) and
        certifies it in the roster with their own staff key, unlocked by the password they signed in with."""
        self.permit(actor)
        keys = self._keys_of(actor.agency, actor.staff)
        if keys is None:
            sid = SecurityKeys.id_for(self.ids.staff(actor.agency, actor.staff))
            keys = SecurityKeys(id=sid, agency=actor.agency, staff=actor.staff)
        keys.register(credential, cose_key, counter, by=actor.staff)
        roster = self._certify(actor, credential, cose_key, rp_id_hash)
        self.save_as(actor.agency, keys, roster)

    def certify_security_key(self, actor: Actor, credential: str, rp_id_hash: str) -> bool:
        """Certify a key ``actor`` registered and just used, unless it is certified already (a key registered
        before certification, or whose certifying staff key was replaced by a new enrolment); True if done."""
        known = self.security_keys(actor.agency, actor.staff).get(credential)
        if known is None:
            raise PermissionDenied("that security key is not registered for this staff member")
        if any(c.credential == credential for c in self.certified_security_keys(actor.agency, actor.staff, rp_id_hash)):
            return False
        self.save_as(actor.agency, self._certify(actor, credential, known["cose_key"], rp_id_hash))
        return True

    def _certify(self, actor: Actor, credential: str, cose_key: str, rp_id_hash: str) -> StaffRoster:
        signer = self.signer_for(actor)  # the person's own staff key: the node alone cannot certify a key
        roster = self.find(StaffRoster, StaffRoster.create_id(actor.agency))
        state = self.roster(actor.agency)
        if roster is None or state is None:
            raise IntegrityError("the agency has no staff roster to certify this key in", code=Code.STAFF_SIGNATURE)
        key_id = f"{actor.agency}:{secrets.token_hex(8)}"  # one id per certification, signed with it
        statement = security_key_statement(actor.agency, actor.staff, key_id, credential, cose_key, rp_id_hash)
        cert = {
            "staff": actor.staff,
            "key_id": key_id,
            "credential": credential,
            "cose_key": cose_key,
            "rp_id_hash": rp_id_hash,
            "certified_by": signer.key_id,
            "signature": signer.sign(statement)["signature"],
        }
        state.check("SecurityKeyCertified", {"security_key": cert})
        roster.certify_security_key(security_key=cert)
        return roster

    def record_security_key_use(self, actor: Actor, credential: str, counter: int) -> None:
        """A sign-in whose assertion verified; refused (and nothing recorded) if the counter went back."""
        keys = self._keys_of(actor.agency, actor.staff)
        if keys is None:
            raise PermissionDenied("no security key is registered for this staff member")
        keys.use(credential, counter)
        self.save_as(actor.agency, keys)

    def remove_security_key(self, actor: Actor, staff: str, credential: str) -> None:
        """The holder removes their own key, or an administrator removes a lost one; its certifications in
        the roster are revoked with it (what it signs afterwards is accepted nowhere)."""
        if staff == actor.staff:
            self.permit(actor)
        else:
            self.authorise(actor, Action.ADMINISTER)
        keys = self._keys_of(actor.agency, staff)
        if keys is None:
            raise PermissionDenied("no security key is registered for this staff member")
        keys.remove(credential, by=actor.staff)
        roster = self.find(StaffRoster, StaffRoster.create_id(actor.agency))
        for cert in self.certified_security_keys(actor.agency, staff):
            if cert.credential == credential and roster is not None:
                roster.revoke(staff=staff, key_id=cert.key_id, reason="security key removed", by=actor.staff)
        self.save_as(actor.agency, keys, *([roster] if roster is not None and roster.pending_events else []))
