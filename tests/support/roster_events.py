"""A provider's staff roster as the events of its roster stream (``StaffRoster``: ``Opened``, ``KeyCertified``),
made the way ``CredentialCommands.activate_credential`` makes them — a root administrator enrolled by the
node, then staff whose codes that administrator signed, each key with its proof of possession — and reduced to
what travels to the hub (``ledger.linkage.staff_rosters.roster_events``)."""

from __future__ import annotations

import secrets
from typing import Any

from ledger.app.credentials import StaffSigner
from ledger.domain.staff_acts import ROOT_ISSUER, code_digest, enrol_statement, possession_statement
from ledger.linkage.staff_rosters import RosterEvent, roster_events

__all__ = ["certificate", "roster_stream"]

EXPIRES = "2099-01-01T00:00:00+00:00"


def certificate(signer: StaffSigner, issuer: StaffSigner | None, *, certifies: bool) -> dict[str, Any]:
    """``signer``'s key certified by ``issuer`` (None: the root, enrolled by the node at set-up)."""
    agency, who, code = signer.agency, signer.staff, secrets.token_urlsafe(24)
    digest = code_digest(code)
    signed = None if issuer is None else issuer.sign(enrol_statement(agency, who, digest, EXPIRES, certifies))
    return {
        "staff": who,
        "key_id": signer.key_id,
        "public_hex": signer.public_hex,
        "certifies": certifies,
        "code": code,
        "code_digest": digest,
        "expires_at": EXPIRES,
        "issuer": ROOT_ISSUER if issuer is None else issuer.staff,
        "issuer_key_id": None if signed is None else signed["key_id"],
        "issuer_signature": None if signed is None else signed["signature"],
        "possession": signer.sign(possession_statement(agency, who, signer.key_id, digest))["signature"],
    }


def roster_stream(admin: StaffSigner, *staff: StaffSigner) -> list[RosterEvent]:
    """The roster stream: ``admin`` as its root, then each of ``staff`` certified by ``admin``."""
    stream: list[tuple[str, dict[str, Any]]] = [
        ("Opened", {"agency": admin.agency, "root": certificate(admin, None, certifies=True)})
    ]
    stream += [("KeyCertified", {"cert": certificate(s, admin, certifies=False)}) for s in staff]
    return roster_events(stream)
