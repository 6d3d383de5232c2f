"""The ``staff_roster`` kind (ledger.linkage.staff_rosters) decoded strictly, and the roster it folds to.

Threats: a peer agency or a broken sender (bytes the hub must refuse with a ledger error, never a crash or a
roster that certifies what the ledger's rule would not), a shell user at the provider (its node key certifying
a staff key by itself: the fold ignores it, as every reader of a roster does).
"""

from __future__ import annotations

import json

import pytest

from ledger.errors import Code, InputError
from ledger.linkage.messages import decode
from ledger.linkage.staff_rosters import MAX_EVENTS, StaffRosterMessage, fold, roster_events
from tests.support.hub_world import A, B
from tests.support.roster_events import certificate, roster_stream
from tests.support.staff_keys import staff_signer

ADMIN, APR = staff_signer(A, "admin"), staff_signer(A, "apr")


def test_a_roster_round_trips_and_folds_by_the_ledgers_rule() -> None:
    stream = roster_stream(ADMIN, APR)
    m = StaffRosterMessage.of(0, stream)
    again = decode(StaffRosterMessage, m.encode())
    assert again.decoded() == stream
    folded = fold(A, again.decoded())
    assert {c.staff for c in folded.keys.values()} == {"admin", "admin2", "apr"}  # admin2: named at set-up
    assert folded.roles_recorded and folded.holds("apr", "approver")
    assert fold(B, stream).keys == {}  # A's certificates certify nothing in B's roster
    forged = roster_events([("KeyCertified", {"cert": certificate(staff_signer(A, "x"), None, certifies=True)})])
    assert len(fold(A, [*stream, *forged]).keys) == 3  # a root-issued certificate after the root: ignored


def test_stored_fields_beyond_what_the_rule_reads_do_not_travel() -> None:
    [(kind, fields)] = roster_events([("KeyRevoked", {"staff": "apr", "key_id": APR.key_id, "reason": "x", "by": "a"})])
    assert (kind, fields) == ("KeyRevoked", {"staff": "apr", "key_id": APR.key_id})


@pytest.mark.parametrize(
    "events",
    [
        "not json",
        "{}",
        "[]",
        json.dumps([["Renamed", {"x": "y"}]]),
        json.dumps([["KeyRevoked", {"staff": "apr"}]]),  # a field missing
        json.dumps([["KeyRevoked", {"staff": "apr", "key_id": "k", "extra": "e"}]]),
        json.dumps([["KeyRevoked", {"staff": 1, "key_id": "k"}]]),
        json.dumps([["KeyRevoked", {"staff": "x" * 5000, "key_id": "k"}]]),
        json.dumps([["Opened", {"root": {"a": {"b": {"c": "d"}}}}]]),  # nested too deep
        json.dumps([["KeyRevoked", {"staff": "apr", "key_id": "k"}]] * (MAX_EVENTS + 1)),
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_malformed_events_are_refused(events: str) -> None:
    payload = json.dumps({"position": 0, "events": events}).encode()
    with pytest.raises(InputError) as err:
        decode(StaffRosterMessage, payload)
    assert err.value.code in (Code.MALFORMED, Code.OVERSIZE)


def test_a_position_is_a_whole_number() -> None:
    for position in (-1, True, 10**9):
        with pytest.raises(InputError):
            StaffRosterMessage(position, "[]").check()
