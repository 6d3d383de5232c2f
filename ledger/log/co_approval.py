"""The check of a break-glass co-approval signed on a prefecture's own node (docs/staff.md, "Break-glass").

A municipality with a single administrator cannot reach a second one; its prefecture's administrator signs a
co-approval of one pending grant with their own staff key, and the municipality's node records it. One rule
for the municipality's app (before it records ``RoleGrant.BreakGlassApproved``) and ``audit verify`` (after):
the key is certified for that person in the prefecture's roster (received from the prefecture like any shared
event), not revoked, an administrator's (may certify), and its signature covers this grant and this note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.domain.staff_acts import co_approval_statement, note_digest
from ledger.log.staff_roster import STAFF_KEY, RosterState, verify_signature

__all__ = ["RECORDED", "check_co_approval", "recorded"]

# what the grant's event embeds (the note itself is the event's own ``note``)
RECORDED = ("prefecture", "staff", "key_id", "agency", "grant", "digest", "note_digest", "at", "signature")


def recorded(co: Mapping[str, Any]) -> dict[str, str]:
    """The co-approval as the grant's event embeds it."""
    return {k: str(co[k]) for k in RECORDED}


def check_co_approval(
    roster: RosterState | None, co: Mapping[str, Any], agency: str, grant: str, digest: str, note: str
) -> str | None:
    """Why ``co`` (:data:`RECORDED`'s fields) is not a co-approval, by an administrator certified in
    ``roster`` (the prefecture's), of grant ``grant`` of ``agency`` whose digest is ``digest``, for ``note``
    (None: it is)."""
    try:
        prefecture, staff, key_id = str(co["prefecture"]), str(co["staff"]), str(co["key_id"])
        if roster is None or not roster.opened or roster.agency != prefecture:
            return f"{prefecture} has no staff roster here to check the co-approval against (not received yet?)"
        if co["agency"] != agency or co["grant"] != grant:
            return "the co-approval is for another grant"
        if co["digest"] != digest:
            return "the co-approval's grant digest does not match this grant (staff, role or proposer differ)"
        if not note.strip():
            return "a break-glass co-approval needs a note saying why"
        if co["note_digest"] != note_digest(note):
            return "the note is not the one the prefecture's administrator signed"
        cert = roster.keys.get(key_id)
        if cert is None or cert.staff != staff or cert.kind != STAFF_KEY:
            return f"key {key_id} is not a staff key certified for {prefecture}/{staff}"
        if cert.revoked:
            return f"key {key_id} of {prefecture}/{staff} was revoked"
        if not cert.certifies:
            return f"{prefecture}/{staff}'s key is not an administrator's (it may not certify)"
        statement = co_approval_statement(
            prefecture, staff, key_id, agency, grant, digest, str(co["note_digest"]), str(co["at"])
        )
        if not verify_signature(cert.public_hex, str(co["signature"]), statement):
            return "the co-approval's signature does not verify"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "a malformed co-approval"
    return None
