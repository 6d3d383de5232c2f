"""A provider's staff roster as the events of its roster stream (``StaffRoster``: ``Opened``, ``KeyCertified``,
``RoleCertified``), made the way ``CredentialCommands.activate_credential`` and the role grants make them — a
root administrator enrolled by the node, a second administrator named at set-up, then staff whose codes the
root signed, each key with its proof of possession, and the roles granted by the two administrators — and
reduced to what travels to the hub (``ledger.linkage.staff_rosters.roster_events``)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from ledger.app.credentials import StaffSigner
from ledger.domain.staff_acts import (
    APPROVED_ROLE,
    PROPOSED_ROLE,
    ROOT_ISSUER,
    code_digest,
    enrol_statement,
    grant_digest,
    possession_statement,
    role_statement,
)
from ledger.linkage.staff_rosters import RosterEvent, roster_events
from tests.support.staff_keys import staff_signer

__all__ = ["certificate", "role_certified", "roster_stream"]

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


def role_certified(admin: StaffSigner, second: StaffSigner | None, who: str, role: str) -> dict[str, Any]:
    """The ``RoleCertified`` fields of ``role`` granted to ``who``: proposed by ``admin``, approved by ``second``
    (None: a one-step role, or a grant one administrator signed alone — which certifies no privileged role)."""
    grant = str(uuid.uuid4())
    digest = grant_digest(admin.agency, grant, who, role, admin.staff)

    def signed(by: StaffSigner, act: str) -> dict[str, str]:
        return {"staff": by.staff, **by.sign(role_statement(act, digest))}

    return {
        "certified": {
            "staff": who, "role": role, "grant": grant, "proposed_by": admin.staff,
            "proposal": signed(admin, PROPOSED_ROLE),
            "approval": None if second is None else signed(second, APPROVED_ROLE),
            "co_approval": None,
        }
    }  # fmt: skip


def roster_stream(
    admin: StaffSigner,
    *staff: StaffSigner,
    roles: bool | Mapping[str, str] = True,
    second: StaffSigner | None = None,
) -> list[RosterEvent]:
    """The roster stream: ``admin`` as its root, then each of ``staff`` certified by ``admin``. With ``roles``
    (the default, as every roster this release opens) the root records roles, ``second`` (default a fresh
    ``admin2``) is the second administrator named at set-up, and each staff member is granted a role by the two:
    ``roles[staff]``, or approver. ``roles=False``: a roster opened before roles travelled."""
    root = certificate(admin, None, certifies=True)
    stream: list[tuple[str, dict[str, Any]]] = []
    if roles is not False:
        second = second or staff_signer(admin.agency, "admin2")
        root |= {"roles": ["administrator"], "set_up_administrators": [admin.staff, second.staff]}
    stream.append(("Opened", {"agency": admin.agency, "root": root}))
    if second is not None:
        stream.append(("KeyCertified", {"cert": certificate(second, admin, certifies=True)}))
    stream += [("KeyCertified", {"cert": certificate(s, admin, certifies=False)}) for s in staff]
    if roles is not False:
        given = {} if roles is True else roles
        stream += [
            ("RoleCertified", role_certified(admin, second, s.staff, given.get(s.staff, "approver"))) for s in staff
        ]
    return roster_events(stream)
