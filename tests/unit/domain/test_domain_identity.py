"""Identity aggregates on their own: number changes, proxies, and the records of reads and tokens."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.identity import AccessRecord, ProxyRegistration, PseudonymLink, ReportRecord, TokenGrant
from ledger.errors import StateConflict
from tests.support.domain import A, emitted, pseudonym

ID = "ledger.domain.identity:"


def test_a_proxy_is_cancelled_once_and_keeps_the_keyed_id_it_was_given() -> None:
    """Threat: the perpetrator registered as the victim's Mynaportal proxy — cancelling is recorded once,
    and the stream id is the caller's keyed id (no one derives it from the two pseudonyms)."""
    stream = uuid4()
    p = ProxyRegistration(id=stream, agency=A, subject=pseudonym("victim"), proxy=pseudonym("perp"), by="op")
    assert p.id == stream and p.active
    p.cancel("op", "the proxy is the perpetrator")
    assert not p.active
    with pytest.raises(StateConflict, match="already cancelled"):
        p.cancel("op", "again")
    assert emitted(p) == [ID + "ProxyRegistration.Registered", ID + "ProxyRegistration.Cancelled"]


def test_a_number_change_links_old_to_new() -> None:
    """Threat: the perpetrator counting on a new individual number to escape the flags set on the old one."""
    old, new = pseudonym("old number"), pseudonym("new number")
    link = PseudonymLink(id=uuid4(), agency=A, old=old, new=new, by="op")
    assert (link.old, link.new) == (old, new)
    assert emitted(link) == [ID + "PseudonymLink.Linked"]


def test_reads_tokens_and_reports_are_recorded_and_stay_local() -> None:
    """Threat: an insider reading protected details unrecorded, and a peer agency seeing who read what."""
    records = [
        AccessRecord(agency=A, staff="rev", subject=pseudonym("victim"), what="holding agencies", purpose="review"),
        TokenGrant(
            agency=A,
            issuer="admin",
            staff="rev",
            roles=["reviewer"],
            expires_at="2027-01-01T00:00:00+00:00",
            token_id="0123456789abcdef",
        ),
        ReportRecord(
            agency=A,
            staff="aud",
            period_from="2026-01-01T00:00:00+00:00",
            period_to="2026-12-31T00:00:00+00:00",
            out_dir="reports/2026",
        ),
    ]
    assert [emitted(r) for r in records] == [
        [ID + "AccessRecord.ProtectedDetailsRead"],
        [ID + "TokenGrant.Issued"],
        [ID + "ReportRecord.Generated"],
    ]
    assert not any(type(r).SHARED for r in records)
    assert PseudonymLink.SHARED and ProxyRegistration.SHARED
