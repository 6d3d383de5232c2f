"""The portal's rules for reading a person's page, and the strict decoding of the page the hub sends.

Threats: the perpetrator at the portal — holding the victim's old card after a number change, or registered as
the victim's proxy or guardian while a protection applies; a broken or hostile sender of a page (decoded
strictly: nothing but the page's fields, each of its type).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ledger.errors import Code, FlagLedgerError, InputError, NotFoundError
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.portal_messages import MAX_PROXIES, MAX_RECORDS, PageRecord, PortalPageMessage
from ledger.portal.rules import VIEWERS, view

CODE = "m" + "0" * 32
RECORD = PageRecord("r1", "2026-12-07T12:00:00+09:00", "131032", "131024", "児童手当", 74, "地方税関係情報", "provided")


P = "m" + "1" * 32  # a proxy's own card, listed on the page (registered, and approved while protected)


def page(*, protected: bool = False, superseded: bool = False, hidden: bool = False) -> PortalPageMessage:
    return PortalPageMessage(CODE, 7, (RECORD,), hidden, protected, superseded, (P,))


def code_of(p: PortalPageMessage | None, viewer: str, proxy: str | None = None) -> str:
    with pytest.raises(FlagLedgerError) as caught:
        view(p, viewer, proxy)
    return caught.value.code


@pytest.mark.parametrize("viewer", VIEWERS)
def test_old_card_refused_after_a_number_change(viewer: str) -> None:
    """Perpetrator with the victim's old card: once the number was replaced, nobody reads through it — not the
    person, not a proxy — even while no protection applies."""
    assert code_of(page(superseded=True), viewer, P) == Code.CARD_REVOKED
    assert code_of(page(superseded=True, protected=True), viewer, P) == Code.CARD_REVOKED
    assert view(page(), viewer, P).records == (RECORD,)  # the control: the current card reads


def test_a_guardian_is_refused_while_a_flag_applies() -> None:
    """Perpetrator as the victim's guardian: refused while a protection applies, allowed once none applies; the
    person themself always reads."""
    assert code_of(page(protected=True), "guardian") == Code.PROXY_REFUSED
    assert view(page(protected=False), "guardian").records == (RECORD,)
    assert view(page(protected=True), "self").records == (RECORD,)


def test_a_proxy_reads_only_with_their_own_listed_card() -> None:
    """Perpetrator posing as the victim's proxy with no protection applying: with the victim's card alone (no
    card of their own), or with their own card not on the page's list (unregistered, or cancelled), refused;
    the listed proxy reads (the hub lists only registered proxies: ``ledger.hub.proxy_registrations``)."""
    q = "m" + "2" * 32
    assert code_of(page(), "proxy") == Code.PROXY_REFUSED
    assert code_of(page(), "proxy", q) == Code.PROXY_REFUSED
    assert code_of(replace(page(), proxies=()), "proxy", P) == Code.PROXY_REFUSED
    assert view(page(), "proxy", P).records == (RECORD,)


def test_the_note_says_only_that_something_was_hidden() -> None:
    """Perpetrator at the portal: a hidden record shows as the fixed note, naming no holder and no count."""
    assert view(page(hidden=True), "self").note == HIDDEN_NOTE
    assert view(page(), "self").note is None


def test_no_page_yet_and_unknown_viewer() -> None:
    """Shell user at the portal: no page fed yet is not found (nothing shown); an unknown viewer is bad input."""
    with pytest.raises(NotFoundError):
        view(None, "self")
    with pytest.raises(InputError):
        view(page(), "neighbour")


def test_only_the_approved_proxy_reads_while_protected() -> None:
    """Perpetrator as proxy or guardian: with the holder's approval of P listed on the page, P (by P's card's
    code) reads; another proxy, a proxy with no card, and a guardian even with P's code stay refused."""
    p, q = "m" + "1" * 32, "m" + "2" * 32
    approved = PortalPageMessage(CODE, 7, (RECORD,), False, True, False, (p,))
    assert view(approved, "proxy", p).records == (RECORD,)
    for viewer, proxy in (("proxy", q), ("proxy", None), ("guardian", p)):
        with pytest.raises(FlagLedgerError) as caught:
            view(approved, viewer, proxy)
        assert caught.value.code == Code.PROXY_REFUSED
    assert code_of(replace(approved, superseded=True), "proxy") == Code.CARD_REVOKED


def test_a_page_round_trips_and_is_decoded_strictly() -> None:
    """A hostile or broken sender of a page: extra, missing, mistyped fields, a non-portal code or too many
    records are refused as malformed; the genuine page round-trips."""
    good = page(protected=True, hidden=True)
    assert PortalPageMessage.decode(good.encode()) == good
    body = json.loads(good.encode())
    bad = [
        {**body, "extra": 1},
        {k: v for k, v in body.items() if k != "protected"},
        {**body, "protected": 1},
        {**body, "version": True},
        {**body, "code": "a" + "0" * 32},
        {**body, "records": [body["records"][0][:7]]},
        {**body, "records": [[*body["records"][0][:5], "74", *body["records"][0][6:]]]},
        {**body, "records": [body["records"][0]] * (MAX_RECORDS + 1)},
        {**body, "proxies": ["a" + "0" * 32]},  # an agency's code is no portal card
        {**body, "proxies": "m" + "0" * 32},
        {**body, "proxies": [1]},
        {**body, "proxies": ["m" + "0" * 32] * (MAX_PROXIES + 1)},
    ]
    old = {k: v for k, v in body.items() if k != "proxies"}  # a page kept before approvals: it approves nobody
    assert PortalPageMessage.decode(json.dumps(old).encode()).proxies == ()
    for b in bad:
        with pytest.raises(InputError):
            PortalPageMessage.decode(json.dumps(b).encode())
    with pytest.raises(InputError):
        PortalPageMessage.decode(b"[" * 100_000)
