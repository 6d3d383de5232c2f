"""The WebAuthn authenticators (security keys, IC cards, platform authenticators) a staff member registered.

This record is local to the agency's node (its sign-ins, counters). Each sign-in that used a key is an event
too, with the authenticator's signature counter, so a cloned key (a counter that goes back) is refused and the
attempt is on record. What peers see of a key is its certification in the shared roster (credential id, public
key, relying party: ``StaffRoster.SecurityKeyCertified``), so that they can check the acts it signs.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import AuthError, Code, InputError, NotFoundError, StateConflict

__all__ = ["MAX_KEYS", "SecurityKeys"]

MAX_KEYS = 10  # a person with more than a handful of keys is a lost-key problem, not a convenience


class SecurityKeys(LedgerAggregate):
    @staticmethod
    def id_for(staff_stream: UUID) -> UUID:
        """Derived from the staff member's own (keyed) stream id, so it names nobody either."""
        return uuid5(staff_stream, "security-keys")

    @event("Opened")
    def __init__(self, id: UUID, agency: str, staff: str) -> None:
        self.agency = agency
        self.staff = staff
        self.keys: dict[str, dict[str, Any]] = {}

    def check_known(self, credential: str) -> dict[str, Any]:
        found = self.keys.get(credential)
        if found is None:
            raise NotFoundError("that security key is not registered for this staff member")
        return found

    def register(self, credential: str, cose_key: str, counter: int, by: str) -> None:
        if credential in self.keys:
            raise StateConflict("that security key is already registered")
        if len(self.keys) >= MAX_KEYS:
            raise InputError(f"at most {MAX_KEYS} security keys per person: remove one first", code=Code.OVERSIZE)
        self._registered(credential=credential, cose_key=cose_key, counter=counter, by=by)

    @event("Registered")
    def _registered(self, credential: str, cose_key: str, counter: int, by: str) -> None:
        self.keys[credential] = {"cose_key": cose_key, "counter": counter}

    def use(self, credential: str, counter: int) -> None:
        """A sign-in with this key; its counter must move on unless the authenticator keeps none (always 0)."""
        known = self.check_known(credential)
        if (counter or known["counter"]) and counter <= known["counter"]:
            raise AuthError("this security key's counter went back: it may have been copied; ask an administrator")
        self._used(credential=credential, counter=counter)

    @event("Used")
    def _used(self, credential: str, counter: int) -> None:
        self.keys[credential]["counter"] = counter

    def remove(self, credential: str, by: str) -> None:
        self.check_known(credential)
        self._removed(credential=credential, by=by)

    @event("Removed")
    def _removed(self, credential: str, by: str) -> None:
        del self.keys[credential]
