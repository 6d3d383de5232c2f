"""RevokedKeyAcceptance on its own: applying an event signed by a key revoked since takes two administrators."""

from __future__ import annotations

import hashlib

import pytest

from ledger.domain.parked import RevokedKeyAcceptance
from ledger.errors import SelfApprovalError, StateConflict
from tests.support.domain import A, B, emitted

DIGEST = hashlib.sha256(b"parked message bytes").hexdigest()
R = "ledger.domain.parked:RevokedKeyAcceptance."


def proposed(by: str = "admin1") -> RevokedKeyAcceptance:
    return RevokedKeyAcceptance(
        agency=A,
        digest=DIGEST,
        parked_id=12,
        event_id="e9",
        origin=B,
        key_id=f"{B}:0123456789abcdef",
        stream="6f1c1a4e-0c1d-4b8e-9f00-000000000002",
        version=4,
        topic="ledger.domain.flags:Protection.FlagsReleased",
        proposed_by=by,
        note="B confirmed by phone that it sent this release",
    )


def test_the_proposer_cannot_approve_and_approval_happens_once() -> None:
    """Threat: an insider holding a stolen key, backdating a flag release under it and letting it in alone."""
    acc = proposed()
    assert acc.id == RevokedKeyAcceptance.create_id(A, DIGEST) != RevokedKeyAcceptance.create_id(B, DIGEST)
    with pytest.raises(SelfApprovalError):
        acc.approve("admin1", "looks fine")
    assert acc.approved_by is None
    acc.approve("admin2", "confirmed independently")
    with pytest.raises(StateConflict, match="already approved"):
        acc.approve("admin3", "again")
    assert acc.approved_by == "admin2" and RevokedKeyAcceptance.SHARED is False
    assert emitted(acc) == [R + "Proposed", R + "Approved"]
