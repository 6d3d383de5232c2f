"""The staff roster: an agency's certified staff keys, shared so that peers check staff signatures.

One stream per agency (``StaffRoster.create_id``). Its first event certifies the root: the key that completed
the enrolment of the agency's first administrator (code printed by ``flagledger init``). Each later key is
certified by the person's proof of possession, the enrolment code (revealed once used: it is one-time) and
the issuing administrator's signature over (agency, staff, code digest, expiry); a revocation ends a key.
The aggregate's state is folded by :class:`ledger.domain.staff_acts.RosterState`, which ignores an invalid
event (one written straight into the store with the node key): such an event certifies nothing, and
``audit verify`` names it.
"""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id
from ledger.domain.staff_acts import RosterState
from ledger.errors import Code, IntegrityError, StateConflict


class StaffRoster(LedgerAggregate):
    SHARED = True

    @staticmethod
    def create_id(agency: str, **_: Any) -> UUID:
        # public on purpose, like the key registry: names an agency only, and peers look it up by code
        return stable_id("staff-roster", agency)

    @classmethod
    def open(cls, agency: str, root: dict[str, Any]) -> StaffRoster:
        problem = RosterState(agency).apply("Opened", {"root": root})
        if problem is not None:
            raise IntegrityError(f"the roster root is refused: {problem}", code=Code.STAFF_SIGNATURE)
        return cls(agency=agency, root=root)

    @event("Opened")
    def __init__(self, agency: str, root: dict[str, Any]) -> None:
        self.agency = agency
        self.state = RosterState(agency)
        self.state.apply("Opened", {"root": root})

    def certify(self, cert: dict[str, Any], state: RosterState) -> None:
        """``state``: the roster as every reader folds it (:meth:`ledger.app.credentials.CredentialCommands.roster`),
        not this object's: a creation event forged later into the stream would reset an aggregate."""
        problem = copy.deepcopy(state).apply("KeyCertified", {"cert": cert})
        if problem is not None:
            raise IntegrityError(f"the staff key is refused: {problem}", code=Code.STAFF_SIGNATURE)
        self._certified(cert=cert)

    @event("KeyCertified")
    def _certified(self, cert: dict[str, Any]) -> None:
        self.state.apply("KeyCertified", {"cert": cert})

    def revoke(self, staff: str, key_id: str, reason: str, by: str, state: RosterState) -> None:
        cert = state.keys.get(key_id)
        if cert is None or cert.staff != staff:
            raise StateConflict(f"{staff} holds no key {key_id} here")
        if cert.revoked:
            raise StateConflict(f"key {key_id} is already revoked")
        self._revoked(staff=staff, key_id=key_id, reason=reason, by=by)

    @event("KeyRevoked")
    def _revoked(self, staff: str, key_id: str, reason: str, by: str) -> None:
        self.state.apply("KeyRevoked", {"staff": staff, "key_id": key_id})
