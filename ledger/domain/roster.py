"""The staff roster: an agency's certified staff keys, shared so that peers check staff signatures.

One stream per agency (``StaffRoster.create_id``). Its first event certifies the root: the key that completed
the enrolment of the agency's first administrator (code printed by ``flagledger init``). Each later key is
certified by the person's proof of possession, the enrolment code (revealed once used: it is one-time) and
the issuing administrator's signature over (agency, staff, code digest, expiry); a person's security key
(WebAuthn credential) is certified by their own staff key; a revocation ends a key. The roles a peer checks
on a flag change (who may request, approve, execute) are certified here too, each with the two
administrators' signatures over its grant, and withdrawn here (docs/staff-signing.md, "Roles at peers").

This aggregate only records: every reader folds the stream with :class:`ledger.log.staff_roster.RosterState`
(the app before it writes here, a peer's ingest, ``audit verify``), which ignores an invalid event — one
written straight into the store with the node key certifies nothing, and ``audit verify`` names it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id


class StaffRoster(LedgerAggregate):
    SHARED = True

    @staticmethod
    def create_id(agency: str, **_: Any) -> UUID:
        # public on purpose, like the key registry: names an agency only, and peers look it up by code
        return stable_id("staff-roster", agency)

    @event("Opened")
    def __init__(self, agency: str, root: dict[str, Any]) -> None:
        self.agency = agency

    @event("KeyCertified")
    def certify(self, cert: dict[str, Any]) -> None:
        pass

    @event("SecurityKeyCertified")
    def certify_security_key(self, security_key: dict[str, Any]) -> None:
        """A WebAuthn credential of a person, certified by their own staff key (docs/staff-signing.md)."""

    @event("RoleCertified")
    def certify_role(self, certified: dict[str, Any]) -> None:
        """A role a peer checks (requester, approver, operator, reviewer, administrator) given to a person, with the
        administrators' signatures over the grant (or a prefecture's break-glass co-approval)."""

    @event("RolesWithdrawn")
    def withdraw_roles(self, staff: str, roles: list[str], reason: str, by: str) -> None:
        """Roles taken away (a revocation, a deactivation): needs no signature, it only takes authority away."""

    @event("KeyRevoked")
    def revoke(self, staff: str, key_id: str, reason: str, by: str) -> None:
        pass
