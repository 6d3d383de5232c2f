"""Staff keys for the linkage's four-eyes decisions: a provider's roster of certified staff keys, made directly
(the ledger's roster events certify them in a node; here the test is the roster's administrator)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.app.credentials import StaffSigner
from ledger.linkage.consultation import Approval
from ledger.log.staff_roster import KeyCert, RosterState

__all__ = ["approval", "roster_of", "staff_signer"]


def staff_signer(agency: str, staff: str) -> StaffSigner:
    return StaffSigner(agency, staff, Ed25519PrivateKey.generate())


def roster_of(agency: str, *signers: StaffSigner, roles: Mapping[str, Iterable[str]] | None = None) -> RosterState:
    """``agency``'s roster certifying each signer's key (several may be one person's) and recording roles:
    ``roles`` per staff member, by default every signer a reviewer and an approver (the roles that decide a staff
    answer: any two of them decide one)."""
    roster = RosterState(agency, opened=True, roles_recorded=True)
    for s in signers:
        roster.keys[s.key_id] = KeyCert(s.staff, s.key_id, s.public_hex, certifies=False)
    given = roles if roles is not None else {s.staff: ("reviewer", "approver") for s in signers}
    roster.roles = {who: set(held) for who, held in given.items()}
    return roster


def approval(signer: StaffSigner, statement: bytes) -> Approval:
    signed = signer.sign(statement)
    return Approval(signed["key_id"], signed["signature"])
