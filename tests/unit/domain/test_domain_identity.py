"""Identity aggregates on their own: number changes, proxies, and the records of reads and tokens."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.identity import (
    AccessRecord,
    LinkRequest,
    ProxyRegistration,
    PseudonymLink,
    ReportRecord,
    TokenGrant,
)
from ledger.errors import InputError, SelfApprovalError, StateConflict
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


def test_a_link_request_is_decided_once_by_someone_else() -> None:
    """Threat: an insider linking a stranger's number onto a victim's alone — the requester cannot approve or
    reject their own request, a decided request stays decided, and the requests never leave the node."""
    req = LinkRequest(agency=A, kind="link", old=pseudonym("v"), new=pseudonym("s"), requested_by="req", reason="r")
    assert req.status == "pending" and not LinkRequest.SHARED and PseudonymLink.SHARED
    for decide in (lambda: req.approve("req", ""), lambda: req.reject("req", "no")):
        with pytest.raises(SelfApprovalError):
            decide()
    req.approve("apr", "notice checked")
    assert (req.status, req.decided_by) == ("approved", "apr")
    with pytest.raises(StateConflict):
        req.reject("apr2", "too late")
    assert emitted(req) == [ID + "LinkRequest.Requested", ID + "LinkRequest.Approved"]
    with pytest.raises(InputError):
        LinkRequest(agency=A, kind="merge", old="a", new="b", requested_by="req", reason="r")


def test_a_link_is_undone_once_relinked_only_after_and_a_second_change_retires_the_old_number() -> None:
    """Threat: an insider undoing or redoing a number change out of order — an unlink of an undone link and a
    relink of an active one are refused; after a second change the old number is never linked again."""
    old, wrong, right = pseudonym("old"), pseudonym("wrong"), pseudonym("right")
    link = PseudonymLink(id=uuid4(), agency=A, old=old, new=wrong, by="apr")
    with pytest.raises(StateConflict):
        link.relink(right, by="apr", request_id=uuid4())
    link.unlink(by="apr", request_id=uuid4(), reason="wrong person")
    assert not link.active
    with pytest.raises(StateConflict):
        link.unlink(by="apr", request_id=uuid4(), reason="again")
    with pytest.raises(InputError):
        link.relink(old, by="apr", request_id=uuid4())
    link.relink(right, by="apr", request_id=uuid4())
    assert (link.active, link.new) == (True, right)
    link.unlink(by="apr", request_id=uuid4(), reason="changed again", second_change=True)
    with pytest.raises(StateConflict):
        link.relink(pseudonym("newer"), by="apr", request_id=uuid4())
    assert emitted(link) == [ID + "PseudonymLink." + e for e in ("Linked", "Unlinked", "Relinked", "Unlinked")]


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
