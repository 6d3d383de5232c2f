"""The key registry as ledger events: an agency's own keys, and remote agencies' keys it trusts."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id
from ledger.errors import NotFoundError, StateConflict


class KeyRegistry(LedgerAggregate):
    """One per agency, written only by that agency."""

    SHARED = True

    @staticmethod
    def create_id(agency: str, **_: Any) -> UUID:
        # public on purpose: it names an agency, no person, and every peer must find it to check signatures
        return stable_id("keys", agency)

    @event("Opened")
    def __init__(self, agency: str) -> None:
        self.agency = agency
        self.keys: dict[str, dict[str, Any]] = {}

    @event("KeyAdded")
    def add_key(self, key_id: str, public_hex: str, valid_from: str) -> None:
        self.keys[key_id] = {
            "public_hex": public_hex,
            "valid_from": valid_from,
            "valid_until": None,
            "revoked_from": None,
        }

    def check_known(self, key_id: str) -> None:
        if key_id not in self.keys:
            raise NotFoundError(f"agency {self.agency} has no key {key_id}")

    def retire(self, key_id: str, valid_until: str) -> None:
        self.check_known(key_id)
        self._retired(key_id=key_id, valid_until=valid_until)

    @event("KeyRetired")
    def _retired(self, key_id: str, valid_until: str) -> None:
        self.keys[key_id]["valid_until"] = valid_until

    def revoke(self, key_id: str, effective_from: str, reason: str, by: str) -> None:
        self.check_known(key_id)
        if self.keys[key_id]["revoked_from"] is not None:
            raise StateConflict(f"key {key_id} is already revoked")
        self._revoked(key_id=key_id, effective_from=effective_from, reason=reason, by=by)

    @event("KeyRevoked")
    def _revoked(self, key_id: str, effective_from: str, reason: str, by: str) -> None:
        self.keys[key_id]["revoked_from"] = effective_from

    @event("RemoteKeyTrusted")
    def trust_remote(self, remote_agency: str, key_id: str, public_hex: str, valid_from: str, by: str) -> None:
        """An administrator of this agency vouches for another agency's key (out-of-band exchange)."""
