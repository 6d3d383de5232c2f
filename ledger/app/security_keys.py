"""Staff members' WebAuthn security keys: registering one, the sign-ins that used one, removing one.

The WebAuthn ceremonies themselves (challenges, attestation and assertion checks) are the console's
(:mod:`ledger.api.webauthn_keys`); here are the records and the rules on them.
"""

from __future__ import annotations

from typing import Any

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.security_keys import SecurityKeys
from ledger.domain.types import Action
from ledger.errors import PermissionDenied

__all__ = ["SecurityKeyCommands"]


class SecurityKeyCommands(LedgerAccess):
    def _keys_of(self, agency: str, staff: str) -> SecurityKeys | None:
        return self.find(SecurityKeys, SecurityKeys.id_for(self.ids.staff(agency, staff)))

    def security_keys(self, agency: str, staff: str) -> dict[str, dict[str, Any]]:
        """credential id → {cose_key, counter} of the keys ``staff`` registered (none: an empty dict)."""
        self.staff(agency, staff)  # an unknown or foreign staff member is NotFound, not "no keys"
        found = self._keys_of(agency, staff)
        return {c: dict(k) for c, k in found.keys.items()} if found is not None else {}

    def register_security_key(self, actor: Actor, credential: str, cose_key: str, counter: int) -> None:
        """``actor`` registers a key they hold (the console checked the attestation in their own session)."""
        self.permit(actor)
        keys = self._keys_of(actor.agency, actor.staff)
        if keys is None:
            sid = SecurityKeys.id_for(self.ids.staff(actor.agency, actor.staff))
            keys = SecurityKeys(id=sid, agency=actor.agency, staff=actor.staff)
        keys.register(credential, cose_key, counter, by=actor.staff)
        self.save_as(actor.agency, keys)

    def record_security_key_use(self, actor: Actor, credential: str, counter: int) -> None:
        """A sign-in whose assertion verified; refused (and nothing recorded) if the counter went back."""
        keys = self._keys_of(actor.agency, actor.staff)
        if keys is None:
            raise PermissionDenied("no security key is registered for this staff member")
        keys.use(credential, counter)
        self.save_as(actor.agency, keys)

    def remove_security_key(self, actor: Actor, staff: str, credential: str) -> None:
        """The holder removes their own key, or an administrator removes a lost one."""
        if staff == actor.staff:
            self.permit(actor)
        else:
            self.authorise(actor, Action.ADMINISTER)
        keys = self._keys_of(actor.agency, staff)
        if keys is None:
            raise PermissionDenied("no security key is registered for this staff member")
        keys.remove(credential, by=actor.staff)
        self.save_as(actor.agency, keys)
