"""The portal page on the wire (ledger.linkage.sealed_pages): strict decoding, and the newest records that fit.

Threats: a malicious hub or the broker operator feeding the portal a page of another shape (a record in the
clear where sealed contents belong, a version that is no number), and a person with many records whose page
would not fit the largest message.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from ledger.errors import Code, FlagLedgerError
from ledger.linkage.sealed_pages import PAGE_BUDGET, SealedPageEntry, SealedPortalPage

CODE = "m" + "a" * 32


def entry(size: int = 1200) -> SealedPageEntry:
    return SealedPageEntry(uuid.uuid4().hex, "131016", base64.b64encode(b"\0" * size).decode())


def test_a_page_round_trips_and_keeps_the_newest_that_fit() -> None:
    page = SealedPortalPage(CODE, 7, (entry(), entry()), hidden=True, protected=False, superseded=False)
    assert SealedPortalPage.decode(page.encode()) == page
    many = [entry() for _ in range(400)]  # ~650 kB of contents: more than the largest message
    newest = SealedPortalPage.newest(CODE, 8, many, False, False, False)
    assert 0 < len(newest.records) < len(many) and newest.records[-1] == many[-1]
    assert len(newest.encode()) <= PAGE_BUDGET
    assert newest.records == tuple(many[len(many) - len(newest.records) :])  # the newest, in order


@pytest.mark.parametrize(
    "change",
    [
        {"records": [["r", "131016", "児童手当", 74, "地方税関係情報", "held", "2026", "x"]]},  # a clear record
        {"records": [[uuid.uuid4().hex, "131016", "not base64!"]]},
        {"version": True},
        {"version": "7"},
        {"code": "a" + "a" * 32},  # an agency's code, not the portal's
        {"extra": 1},
    ],
)
def test_a_page_of_another_shape_is_refused(change: dict[str, object]) -> None:
    good = json.loads(SealedPortalPage(CODE, 7, (entry(),), False, False, False).encode())
    with pytest.raises(FlagLedgerError) as refused:
        page = SealedPortalPage.decode(json.dumps({**good, **change}).encode())
        page.records[0].sealed()
    assert refused.value.code in (Code.MALFORMED, Code.INVALID_INPUT)


def test_the_fullest_page_rides_inside_the_largest_digest() -> None:
    """Broker operator / a person with many records: the page the hub feeds on a digest schedule is never too
    large for a digest (it would block every digest to the portal behind it)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from ledger.linkage.buckets import ANSWER_SIZE, BUCKETS
    from ledger.linkage.digests import seal_digest
    from ledger.linkage.sealing import seal
    from ledger.log.signing import Signer

    page = SealedPortalPage.newest(CODE, 9, [entry(4200) for _ in range(200)], False, False, False)
    hub, portal = Signer.generate("hub"), X25519PrivateKey.generate().public_key()
    sealed = seal(hub, portal, "portal", uuid.uuid4().hex, page.kind, page.encode(), ANSWER_SIZE)
    digest, taken = seal_digest(hub, portal, "portal", [sealed], BUCKETS[2])
    assert len(digest) <= BUCKETS[-1] + 1024  # the largest digest on the wire
    assert taken == 1 and len(page.records) >= 10
