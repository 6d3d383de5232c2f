"""Sticky hiding on the portal by the hub's sequence, never by a provider's clock (issue #19), SQLite and PostgreSQL.

Threat, in every test: the perpetrator at the portal — as the victim X (with X's card), a proxy, or whoever
holds the card. A provision record made while X was protected, or before, names who asked about X (often the
municipality X moved to, D here); it must never show, nor may the page name the agency protecting X (A). Today
a provider whose clock runs 2 h fast makes such a record reappear after release; here providers' clocks are
off by six hours either way, flags come after records, and a number change reaches the hub late.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ledger.hub.erasure import erase
from ledger.hub.log import HubStore, ProvisionRecord
from ledger.hub.portal_view import PortalPage, portal_page
from ledger.hub.tables import hub_records
from ledger.linkage.codes import Registration, agency_code, link_numbers, portal_code, register
from ledger.linkage.erasure_messages import ErasureMessage
from ledger.linkage.hiding import HIDDEN_NOTE, Action
from ledger.linkage.names import PORTAL
from tests.support.people import individual_number

A, B, C, D = "131016", "131024", "131032", "131041"  # A protects X; B and C provide; D is where X moved
HUB_SECRET = secrets.token_bytes(32)
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SKEW = {B: timedelta(hours=6), C: timedelta(hours=-6)}  # B's clock runs six hours fast, C's six hours slow


@dataclass
class World:
    """The hub, and the agencies and the portal that talk to it (each with its own code secret)."""

    hub: HubStore
    keys: dict[str, bytes] = field(default_factory=lambda: {p: secrets.token_bytes(32) for p in (A, B, C, PORTAL)})
    ids: Iterator[int] = field(default_factory=itertools.count)
    stamps: dict[str, str] = field(default_factory=dict)  # record id → the provider's time on it

    def code(self, party: str, number: str) -> str:
        if party == PORTAL:
            return portal_code(self.keys[PORTAL], number)
        return agency_code(self.keys[party], party, number)

    def meet(self, number: str, *parties: str) -> None:
        """Each party registers the person with the hub the first time it meets them (sealed in real life)."""
        for party in parties:
            register(self.hub.codes, HUB_SECRET, Registration(party, self.code(party, number), number))

    def provide(self, provider: str, number: str, real_time: datetime, querier: str = D) -> str:
        """``provider`` answers ``querier`` about the person, stamping the record with its own (skewed) clock."""
        rid = f"r{next(self.ids)}"
        made_at = self.stamps[rid] = (real_time + SKEW.get(provider, timedelta())).isoformat()
        record = ProvisionRecord(
            rid, self.code(provider, number), querier, "児童手当", 74, "地方税関係情報", "provided", made_at
        )
        self.hub.log.provision(provider, record)
        return rid

    def flag(self, holder: str, number: str, action: Action) -> None:
        self.hub.log.flag(holder, self.code(holder, number), "NON_DISCLOSURE", action, f"c{next(self.ids)}")

    def page(self, number: str) -> PortalPage:
        return portal_page(self.hub.engine, self.hub.codes, self.code(PORTAL, number))


@pytest.fixture
def world(leader_hub: HubStore) -> World:
    return World(leader_hub)


def shown(page: PortalPage) -> list[str]:
    return [r.record_id for r in page.records]


def names_no_one_hidden(page: PortalPage) -> None:
    """Nothing on the page names the holder or the querier of a hidden record; the note is the fixed words."""
    assert page.note in (None, HIDDEN_NOTE)
    for record in page.records:
        assert A not in asdict(record).values() and D not in asdict(record).values(), record


def test_six_hours_of_clock_skew_between_providers_does_not_unhide_a_record(world: World) -> None:
    x = individual_number()
    world.meet(x, A, B, C, PORTAL)
    before = world.provide(C, x, NOON - timedelta(hours=3))  # C's clock: 03:00
    world.flag(A, x, "set")  # at noon
    during = world.provide(B, x, NOON + timedelta(hours=1))  # B's clock: 19:00, after the release below
    world.flag(A, x, "release")  # at 14:00
    after = world.provide(C, x, NOON + timedelta(hours=3), querier=B)  # C's clock: 09:00, before the set
    page = world.page(x)
    assert shown(page) == [after] and page.note == HIDDEN_NOTE
    names_no_one_hidden(page)
    # what comparing the providers' clocks with the release's time would have shown: the record made under
    # protection (B's fast clock), and not the one made after release (C's slow clock)
    released = (NOON + timedelta(hours=2)).isoformat()
    assert [r for r in (before, during, after) if world.stamps[r] >= released] == [during]


def test_a_flag_set_after_a_record_hides_it(world: World) -> None:
    """The seed's case 1: the record was made (and shown) before anyone protected X; once A protects X it is
    hidden too — it names D, where X went."""
    x = individual_number()
    world.meet(x, A, B, PORTAL)
    made = world.provide(B, x, NOON)
    assert shown(world.page(x)) == [made] and world.page(x).note is None
    world.flag(A, x, "set")
    page = world.page(x)
    assert page.records == () and page.note == HIDDEN_NOTE


def test_release_keeps_earlier_hidden_records_hidden(world: World) -> None:
    x = individual_number()
    world.meet(x, A, B, C, PORTAL)
    world.provide(B, x, NOON - timedelta(hours=1))
    world.flag(A, x, "set")
    world.provide(C, x, NOON + timedelta(hours=1))
    assert world.page(x).records == ()
    world.flag(A, x, "release")
    page = world.page(x)
    assert page.records == () and page.note == HIDDEN_NOTE
    world.flag(A, x, "set")  # protected again and released again: still nothing from before
    world.flag(A, x, "release")
    assert world.page(x).records == ()


def test_a_record_made_after_release_is_visible(world: World) -> None:
    x = individual_number()
    world.meet(x, A, B, PORTAL)
    world.flag(A, x, "set")
    world.provide(B, x, NOON)
    world.flag(A, x, "release")
    later = world.provide(B, x, NOON - timedelta(days=1), querier=C)  # stamped a day early: still after, here
    page = world.page(x)
    assert shown(page) == [later] and page.note == HIDDEN_NOTE
    names_no_one_hidden(page)


def test_a_late_number_change_link_hides_the_old_number_records(world: World) -> None:
    """X's number changed: B answered D under the old number; A protects X under the new one and has since
    released; the number change reaches the hub only after all of it. From then on the old number's record
    is X's, and hidden — under either number's card."""
    old, new = individual_number(), individual_number()
    world.meet(old, B, C, PORTAL)
    world.meet(new, A, C, PORTAL)
    on_old = world.provide(B, old, NOON - timedelta(hours=5))
    world.flag(A, new, "set")
    world.flag(A, new, "release")
    after = world.provide(C, new, NOON + timedelta(hours=1), querier=B)
    assert shown(world.page(old)) == [on_old]  # before the link: nothing ties the old number to A's flag
    assert shown(world.page(new)) == [after]
    link_numbers(world.hub.codes, C, world.code(C, old), world.code(C, new))  # C reports the change, late
    for number in (old, new):
        page = world.page(number)
        assert shown(page) == [after] and page.note == HIDDEN_NOTE
        names_no_one_hidden(page)


def test_an_erasure_of_clear_records_removes_them_and_unhides_nothing(world: World) -> None:
    """Perpetrator at the portal, insider at the hub (issue 22): records filed in the clear (older senders) are
    shredded on their provider's erasure — the text gone from the row, the record off the page — while the
    other provider's record stays; a hidden record erased leaves the page as it was, note included."""
    y, x = individual_number(), individual_number()
    world.meet(y, A, C, PORTAL)
    world.meet(x, A, B, PORTAL)
    mine, theirs = world.provide(A, y, NOON), world.provide(C, y, NOON)
    assert [r.record_id for r in world.page(y).records] == [mine, theirs]  # the control
    world.provide(A, x, NOON)
    world.flag(B, x, "set")
    world.flag(B, x, "release")
    hidden = world.page(x)
    assert hidden.records == () and hidden.note == HIDDEN_NOTE

    erase(world.hub, A, ErasureMessage("1" * 32, world.code(A, y)))
    erase(world.hub, A, ErasureMessage("2" * 32, world.code(A, x)))

    page = world.page(y)
    assert [r.record_id for r in page.records] == [theirs] and page.note is None
    assert world.page(x) == hidden
    with world.hub.engine.connect() as conn:
        rows = {r.record_id: r for r in conn.execute(select(hub_records))}
    assert rows[mine].procedure == rows[mine].made_at == rows[mine].querier == "" and rows[mine].legal_item == 0
    assert rows[theirs].procedure == "児童手当"
