"""The hub feeds the portal, the portal serves a person's page by card: in one process on the in-memory transport,
the hub's database on SQLite and PostgreSQL, the portal's its own.

Threats: the perpetrator at the portal — with the victim's old card, as the victim's proxy or guardian, or
reading the page for who asked about them (the municipality they moved to) and who protects them; the broker
operator (re-injecting a page, a peer's message in the portal's inbox); a copy of the portal's database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from ledger.errors import Code, FlagLedgerError, NotFoundError
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.portal_feed import PortalFeed, page_for
from ledger.linkage.codes import portal_code
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.names import PORTAL
from ledger.linkage.portal_messages import PortalPageMessage
from ledger.linkage.sealed_pages import SealedPortalPage
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from tests.support.hub_world import A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.portal_world import PortalWorld

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
MADE = "2026-12-07T12:00:00+09:00"


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def pw(hub: HubStore, broker: MemoryBroker, tmp_path: Path) -> Iterator[PortalWorld]:
    w = PortalWorld.open(Cast.of(A, B, C, D), hub, tmp_path / "portal.sqlite", lambda p: MemoryTransport(broker, p))
    yield w
    w.store.close()


def refused(pw: PortalWorld, number: str, viewer: str = "self") -> str:
    with pytest.raises(FlagLedgerError) as caught:
        pw.page(number, viewer)
    return caught.value.code


def test_a_record_reaches_the_page_and_a_flag_hides_it(pw: PortalWorld) -> None:
    """Perpetrator at the portal (as X, or X's proxy): after A's non-disclosure, no record that names who asked
    about X shows — not even the one made before the flag — the note names no holder, and even X's registered
    proxy is refused while the flag applies (no holder approved); a copy of the portal's database holds no
    number."""
    x, p = individual_number(), individual_number()
    pw.world.agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    pw.world.agencies[B].register_proxy(x, p)  # B knows X: P is X's proxy
    for number in (x, p):
        with pytest.raises(NotFoundError):
            pw.page(number)  # the first sign-in: the registration is owed to the hub, the page not fed yet
    pw.settle()
    first = pw.page(x)
    assert [(r.provider, r.querier, r.outcome) for r in first.records] == [(B, C, "provided")]
    assert first.note is None
    assert pw.page(x, "proxy", p).records == first.records  # no protection: the registered proxy reads it too

    pw.world.agencies[A].flag(x, "NON_DISCLOSURE", "set")
    pw.world.agencies[B].record(x, D, PROCEDURE, ITEM, INFO, "provided", MADE)  # D: where X moved
    pw.settle()
    hidden = pw.page(x)
    assert hidden.records == () and hidden.note == HIDDEN_NOTE
    assert A not in str(hidden) and D not in str(hidden)
    with pytest.raises(FlagLedgerError) as caught:
        pw.page(x, "proxy", p)
    assert caught.value.code == Code.PROXY_REFUSED
    assert refused(pw, x, "guardian") == Code.PROXY_REFUSED

    pw.world.agencies[A].flag(x, "NON_DISCLOSURE", "release")
    pw.settle()
    assert pw.page(x, "proxy", p).records == ()  # released: the proxy may look, and still sees nothing hidden

    rows = []
    meta = MetaData()
    meta.reflect(pw.store.engine)
    with pw.store.engine.connect() as conn:
        for table in meta.sorted_tables:
            rows += [
                bytes(v) if isinstance(v, bytes) else str(v).encode()
                for row in conn.execute(select(table))
                for v in row
            ]
    assert rows and not any(x.encode() in v for v in rows)


def test_a_number_change_revokes_the_old_card(pw: PortalWorld) -> None:
    """Perpetrator holding X's old card (or knowing the old number): after A links X's old number to the new
    one, the old card reads nothing, not even the records made before; X's new card finds them."""
    old, new = individual_number(), individual_number()
    pw.world.agencies[B].record(old, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    with pytest.raises(NotFoundError):
        pw.page(old)
    pw.settle()
    assert len(pw.page(old).records) == 1

    pw.world.agencies[A].link(old, new)
    pw.settle()
    assert refused(pw, old) == Code.CARD_REVOKED
    assert refused(pw, old, "proxy") == Code.CARD_REVOKED
    with pytest.raises(NotFoundError):
        pw.page(new)
    pw.settle()
    assert [(r.provider, r.querier) for r in pw.page(new).records] == [(B, C)]


def test_pages_are_fed_once_and_only_the_hubs_are_kept(pw: PortalWorld, broker: MemoryBroker) -> None:
    """Broker operator re-injecting a page, or a peer agency's message in the portal's inbox: the replay is
    dropped by event id, the peer's refused (only the hub feeds the portal); the hub owes nothing twice."""
    x = individual_number()
    pw.world.agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    with pytest.raises(NotFoundError):
        pw.page(x)
    pw.settle()
    assert pw.feed.step() == 0  # nothing changed since the last round

    inbox = Topics().inbox(PORTAL)
    fed = list(broker.topics[inbox])
    assert fed
    broker.append(inbox, fed[-1])  # the operator re-injects the last page
    b = pw.world.cast.agencies[B]
    forged = PortalPageMessage(portal_code(pw.keys.secret, x), 9999, (), False, False, True)
    broker.append(
        inbox, seal(b.signer, pw.keys.sealing.public_key(), PORTAL, uuid.uuid4().hex, forged.kind, forged.encode())
    )
    step = pw.portal.step(timeout_ms=20)
    assert step.replays == 1 and step.refused == 1 and step.kept == 0
    assert pw.portal.refused == [Code.WRONG_ROUTE]
    assert len(pw.page(x).records) == 1  # B's forged "superseded" page changed nothing
    assert parked(pw.world.hub.store.engine) == []


def test_a_page_owed_before_the_portal_key_is_known_is_fed_later(
    hub: HubStore, broker: MemoryBroker, tmp_path: Path
) -> None:
    """Administrator importing the portal's key after the hub started (an ordering mistake) and a second hub
    process standing by: no page is lost — the round that could not seal writes nothing and the next one feeds
    it — and the standby feeds nothing."""
    pw = PortalWorld.open(Cast.of(A, B), hub, tmp_path / "portal.sqlite", lambda p: MemoryTransport(broker, p))
    try:
        x = individual_number()
        pw.world.agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", MADE)
        with pytest.raises(NotFoundError):
            pw.page(x)
        published = pw.world.hub.directory.sealing.pop(PORTAL)
        pw.portal.step(timeout_ms=20)
        pw.world.settle(timeout_ms=20)
        with pytest.raises(NotFoundError):
            pw.feed.step()  # the portal's sealing key is not known: nothing sealed, nothing marked
        pw.world.hub.directory.sealing[PORTAL] = published
        standby = open_hub_store(str(hub.engine.url), "hub-2")
        try:
            assert PortalFeed(standby, pw.world.cast.hub, pw.world.hub.directory).step() == 0
        finally:
            standby.close()
        pw.settle()
        assert [(r.provider, r.querier) for r in pw.page(x).records] == [(B, C)]
    finally:
        pw.store.close()


def test_the_portal_opens_only_what_the_providers_sealed(pw: PortalWorld, broker: MemoryBroker) -> None:
    """Hub insider (a malicious hub, with its own keys): the page it feeds carries each record as its provider
    sealed it to the portal. A page that shows B's record under C's name, or one record's contents under another
    record id, or a page in the clear, is refused whole (``sealed_message``, ``wrong_route``) and the page kept
    before stays as it was."""
    x = individual_number()
    pw.world.agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    pw.world.agencies[A].record(x, D, "生活保護", 12, INFO, "held", MADE)
    with pytest.raises(NotFoundError):
        pw.page(x)
    pw.settle()
    assert sorted((r.provider, r.querier, r.procedure) for r in pw.page(x).records) == [
        (A, D, "生活保護"),
        (B, C, PROCEDURE),
    ]

    code = portal_code(pw.keys.secret, x)
    honest = page_for(pw.world.hub.store, code, 9999)
    first, second = honest.records
    hub = pw.world.cast.hub
    inbox = Topics().inbox(PORTAL)
    clear = PortalPageMessage(code, 9999, (), False, False, True)
    bent = [
        SealedPortalPage.newest(code, 9999, [replace(first, provider=C), second], False, False, False),
        SealedPortalPage.newest(code, 9999, [replace(first, record_id=second.record_id)], False, False, False),
        SealedPortalPage.newest(code, 9999, [replace(first, contents=second.contents)], False, False, False),
    ]
    for page in (*bent, clear):
        sealed = seal(hub.signer, pw.keys.sealing.public_key(), PORTAL, uuid.uuid4().hex, page.kind, page.encode())
        broker.append(inbox, sealed)
    step = pw.portal.step(timeout_ms=20)
    assert (step.kept, step.refused) == (0, 4)
    assert pw.portal.refused == [Code.SEALED_MESSAGE] * 3 + [Code.WRONG_ROUTE]
    assert len(pw.page(x).records) == 2  # the honest page kept, not the hub's "superseded" in the clear
