"""KeyRegistry on its own: an agency's keys, their retirement and revocation, and remote keys trusted."""

from __future__ import annotations

import pytest

from ledger.domain.keys import KeyRegistry
from ledger.errors import NotFoundError, StateConflict
from tests.support.domain import A, B, emitted

K = "ledger.domain.keys:KeyRegistry."
KEY = f"{A}:0123456789abcdef"
PUBLIC = "ab" * 32
T0, T1 = "2026-01-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"


def test_a_registry_is_one_per_agency_and_tracks_validity() -> None:
    """Threat: the broker operator / network — peers find an agency's keys at an id anyone computes from the
    code, and a key's end of validity is recorded as an event they can check signatures against."""
    reg = KeyRegistry(agency=A)
    assert reg.id == KeyRegistry.create_id(A) != KeyRegistry.create_id(B)
    reg.add_key(KEY, PUBLIC, T0)
    assert reg.keys[KEY] == {"public_hex": PUBLIC, "valid_from": T0, "valid_until": None, "revoked_from": None}
    reg.retire(KEY, T1)
    assert reg.keys[KEY]["valid_until"] == T1
    assert emitted(reg) == [K + "Opened", K + "KeyAdded", K + "KeyRetired"]


def test_an_unknown_key_cannot_be_retired_or_revoked_and_a_revocation_happens_once() -> None:
    """Threat: an insider with one agency's secrets — a stolen key is revoked from a moment on, and that
    moment cannot later be moved (a second revocation would re-date what the first made invalid)."""
    reg = KeyRegistry(agency=A)
    reg.add_key(KEY, PUBLIC, T0)
    other = f"{A}:fedcba9876543210"
    with pytest.raises(NotFoundError):
        reg.retire(other, T1)
    with pytest.raises(NotFoundError):
        reg.revoke(other, T1, "stolen", "admin")
    reg.revoke(KEY, T1, "laptop stolen", "admin")
    with pytest.raises(StateConflict, match="already revoked"):
        reg.revoke(KEY, T0, "backdate it", "admin")
    assert reg.keys[KEY]["revoked_from"] == T1
    assert emitted(reg)[-1] == K + "KeyRevoked"


def test_trusting_a_remote_key_is_recorded_by_who() -> None:
    """Threat: a peer agency — another agency's key enters only as this agency's own vouching event."""
    reg = KeyRegistry(agency=A)
    reg.trust_remote(B, f"{B}:0123456789abcdef", PUBLIC, T0, "admin")
    assert reg.keys == {}  # a remote key is not one of this agency's own
    assert emitted(reg) == [K + "Opened", K + "RemoteKeyTrusted"]
    assert KeyRegistry.SHARED
