"""The portal's delivery keys on a schedule, announced to the agencies, and lost wire keys sent again (issue 22,
docs/erasure.md "copies on the wire") — agency nodes in hub mode, the hub and the portal, on SQLite and
PostgreSQL, the in-memory broker.

The portal rotates its delivery key on its period and retires the old one after the grace; each new key reaches
every agency node through the hub as a notice signed by the portal, and the nodes seal to it with no change to
their config.json. A key message lost (sealed to a key retired before the portal took it, or never sent) is asked
for again through the hub and sent again by its provider — never an erased person's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select

from consumers.linkage_delivery import delivery_keys
from ledger.app import Actor
from ledger.errors import Code, FlagLedgerError
from ledger.hub.inbox import parked
from ledger.hub.portal_feed import PortalFeed
from ledger.linkage.delivery_keys import DeliveryKeyNotice, WireKeyRequest
from ledger.linkage.messages import decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import MemoryTransport, Topics, Transport
from ledger.linkage.wire_keys import SubjectKey, delivery_entry, delivery_of, delivery_serial
from ledger.log.signing import Signer
from ledger.portal.rotation import DeliveryKeySettings, DeliveryRotation
from ledger.portal.service import PortalService, read_page
from ledger.portal.store import PortalStore
from ledger.portal.wire_keys import PortalWireKeys
from ledger.runtime.config import NodeConfig
from ledger.runtime.linkage import linkage_directory
from ledger.runtime.tables import linkage_key_resends, linkage_parked
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, portal_nodes
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

PERIOD, GRACE = 3600.0, 1800.0


@dataclass
class Story:
    """A, B, C's nodes in hub mode, the hub, and the portal rotating its delivery keys on a clock of its own."""

    world: HubNodes
    store: PortalStore
    wires: PortalWireKeys
    portal: PortalService
    feed: PortalFeed
    offset: list[float] = field(default_factory=lambda: [0.0])

    def later(self, seconds: float) -> None:
        self.offset[0] += seconds

    def settle(self, rounds: int = 12) -> None:
        for _ in range(rounds):
            moved = self.portal.step(timeout_ms=20)
            self.world.settle()
            fed = self.feed.step()
            self.world.settle()  # the hub sends what the portal and the feed owe
            kept = self.portal.step(timeout_ms=20)
            if not (moved.sent or fed or kept.kept or kept.sent or moved.announced or kept.waiting):
                return

    def records(self, number: str) -> set[str]:
        """The providers of the person's records on their page (the card signed in, its page fed)."""
        keys = self.world.portal_keys
        assert keys is not None
        try:
            read_page(self.store, keys, self.world.hub.directory, number, "self")
        except FlagLedgerError:
            self.settle()  # signed in now: registered and fed
        return {r.provider for r in read_page(self.store, keys, self.world.hub.directory, number, "self").records}

    def newest(self) -> tuple[str, int]:
        newest = self.wires.newest()
        assert newest is not None
        return newest[0], newest[2]

    def sealed_to(self, agency: str) -> tuple[str, int]:
        """The delivery key (id, serial) ``agency``'s bridge seals wire keys to now."""
        directory = self.world.bridges[agency].directory
        held = directory.delivery_key(PORTAL)
        return ("" if held is None else held[0]), directory.delivery_serial.get(PORTAL, 0)

    def ask(self, querier: str, provider: str, number: str) -> None:
        self.world.bridges[provider].file_person(number)
        self.world.settle()
        bridge = self.world.bridges[querier]
        bridge.ask(Actor(querier, "counter"), provider, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)

    def key_messages_lost(self, provider: str, numbers: tuple[str, ...]) -> dict[str, str]:
        """Records of ``provider`` about ``numbers`` asked for by C and fed to the portal, their key messages
        recorded sent but lost on the way; each number's wire-key ref (hex)."""
        dk = self.world.nodes[provider].app.signed_mapper.data_keys
        assert dk is not None
        refs = {}
        for number in numbers:
            assert self.records(number) == set()  # the card signs in: no record yet
        for number in numbers:
            subject = self.world.bridges[provider].file_person(number)
            ref, _, _ = dk.wire_key(subject, PORTAL)
            dk.wire_delivered(ref)  # as if sent: the key message lost on the way
            refs[number] = ref.hex()
            self.ask(C, provider, number)
        self.world.settle()
        self.feed.step()
        self.world.settle()
        return refs

    def to_inbox(self, agency: str, message: DeliveryKeyNotice | WireKeyRequest) -> None:
        """``message`` as the hub would send it to ``agency`` (signed and sealed by the hub, a fresh event id)."""
        _, sealed = self.world.hub._seal(agency, message)
        hub = MemoryTransport(self.world.broker, HUB)
        hub.send(agency, sealed)
        hub.flush()

    def parked_at(self, agency: str) -> list[str]:
        with self.world.nodes[agency].engine.connect() as conn:
            return list(conn.execute(select(linkage_parked.c.code).order_by(linkage_parked.c.id)).scalars())

    def resends(self, agency: str) -> dict[str, str]:
        with self.world.nodes[agency].engine.connect() as conn:
            rows = conn.execute(select(linkage_key_resends.c.ref, linkage_key_resends.c.outcome)).all()
        return {r: o for r, o in rows}

    def keys_in_portal_inbox(self) -> list[str]:
        """The refs of every ``subject_key`` on the portal's inbox (the broker's retention, from offset 0)."""
        keys = self.world.portal_keys
        assert keys is not None
        sender_keys = self.world.hub.directory.sender_keys(self.world.nodes[A].app.clock())
        refs = []
        for value in self.world.broker.topics.get(Topics().inbox(PORTAL), []):
            opened = unseal(keys.sealing, PORTAL, value, sender_keys)
            if opened.kind == SubjectKey.kind:
                refs.append(decode(SubjectKey, opened.payload).ref)
        return refs


@pytest.fixture
def story(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[Story]:
    """The agencies joined with the portal's exported entry: its first delivery key, with its serial."""
    with story_of(make_node, backend, tmp_path, exported=True) as s:
        yield s


@contextmanager
def story_of(
    make_node: NodeFactory,
    backend: str | None,
    tmp_path: Path,
    exported: bool,
    open_transport: Callable[[str], Transport] | None = None,
) -> Iterator[Story]:
    with portal_nodes(make_node, backend, tmp_path, (A, B, C), exported, open_transport) as p:
        w = p.world
        assert w.portal_keys is not None
        clock = w.nodes[A].app.clock
        offset = [0.0]
        settings = DeliveryKeySettings(period_seconds=PERIOD, grace_seconds=GRACE)
        rotation = DeliveryRotation(
            p.wires, w.portal_keys.signer, lambda: clock() + timedelta(seconds=offset[0]), settings
        )
        yield Story(w, p.store, p.wires, p.service(rotation), p.feed, offset)


def test_the_portal_rotates_announces_and_retires_its_delivery_keys_and_the_nodes_seal_to_the_new_one(
    story: Story,
) -> None:
    """Insider at the portal after an erasure, broker operator keeping the topics (the reason keys rotate): the
    portal makes a delivery key on its first step and a new one once the period ended; each reaches A, B and C
    through the hub as the portal's signed notice, and their bridges seal to it — config.json's
    ``linkage.portal`` entry never touched; the old key's private half is destroyed once its successor is older
    than the grace, and a record sent after that still opens at the portal (no key message was refused)."""
    before = {a: NodeConfig.load(story.world.nodes[a].config.data_dir).linkage["portal"] for a in (A, B, C)}
    first, made = story.newest(), story.wires.newest()
    assert made is not None
    assert all(e["delivery_hex"] == delivery_entry(first[0], made[1], 1) for e in before.values())
    story.settle()  # key 1 announced: the key each entry names already, no news
    assert story.newest() == first and first[1] == 1 and all(story.sealed_to(a) == first for a in (A, B, C))
    x = individual_number()
    story.ask(C, A, x)
    story.settle()
    assert story.records(x) == {A}

    story.later(PERIOD + 1)
    story.settle()
    second = story.newest()
    assert second[1] == 2 and all(story.sealed_to(a) == second for a in (A, B, C))
    assert len(story.wires.deliveries()) == 2  # the old one kept through the grace
    story.later(GRACE + 1)
    story.settle()
    assert story.newest() == second and len(story.wires.deliveries()) == 1  # retired
    assert story.wires.delivery(first[0]) is None

    y = individual_number()
    story.ask(C, A, y)
    story.settle()
    assert story.records(y) == {A} and story.records(x) == {A}
    assert Code.SEALED_MESSAGE not in story.portal.refused  # A sealed Y's key to the new key, not the retired one
    for agency in (A, B, C):
        assert [k["serial"] for k in delivery_keys(story.world.nodes[agency].engine)] == [2]
        assert NodeConfig.load(story.world.nodes[agency].config.data_dir).linkage["portal"] == before[agency]
        assert story.parked_at(agency) == []


def test_a_forged_or_replayed_delivery_key_is_refused_and_parked(story: Story) -> None:
    """A compromised hub that relays, a peer agency, the broker operator: after A took key 2, (1) key 1's genuine
    notice sent again under a fresh event id (replayed), (2) a notice of a key of the attacker's signed with a key
    of its own claiming to be the portal's, (3) key 2's notice with the attacker's key in place of the portal's
    (the signature no longer covers it), (4) another key under serial 2 — each is refused and parked at A, which
    still seals to key 2; (5) a peer's own ``delivery_key`` to the hub is parked there, reaching no agency. A
    record A sends after all this still opens at the portal."""
    story.settle()
    keys = story.world.portal_keys
    assert keys is not None
    old = next(iter(story.wires.deliveries()))
    old_id, old_serial = story.newest()
    old_notice = DeliveryKeyNotice.of(
        keys.signer, old_serial, delivery_entry(old_id, old.public_key(), old_serial), "2026-01-01T00:00:00+00:00"
    )
    story.later(PERIOD + 1)
    story.settle()
    genuine = story.newest()
    assert story.sealed_to(A) == genuine and genuine[1] == 2

    attacker = X25519PrivateKey.generate().public_key()
    mine = delivery_entry("ab" * 16, attacker, 3)
    made = "2026-12-07T00:00:00+00:00"
    newest = story.wires.newest()
    assert newest is not None
    signed = DeliveryKeyNotice.of(keys.signer, 2, delivery_entry(newest[0], newest[1], 2), newest[3])
    forged = [
        old_notice,  # replayed
        DeliveryKeyNotice.of(Signer.generate(PORTAL), 3, mine, made),  # not the portal's key
        replace(signed, delivery=delivery_entry("ab" * 16, attacker, 2)),  # tampered
        DeliveryKeyNotice.of(keys.signer, 2, delivery_entry("cd" * 16, attacker, 2), made),  # serial 2 again
    ]
    for notice in forged:
        story.to_inbox(A, notice)
    story.world.settle()
    codes = story.parked_at(A)
    assert len(codes) == 4 and codes[0] == Code.DELIVERY_REPLAYED and codes[3] == Code.DELIVERY_REPLAYED
    assert all(c in (Code.BAD_SIGNATURE, Code.UNKNOWN_AGENCY, Code.NOT_FOUND, "unknown_key") for c in codes[1:3])
    assert story.sealed_to(A) == genuine
    assert [k["serial"] for k in delivery_keys(story.world.nodes[A].engine)] == [2]

    # a peer sends the hub a notice of its own: parked at the hub (the portal alone sends one)
    c = story.world.bridges[C].end
    c.send(DeliveryKeyNotice.of(Signer.generate(PORTAL), 9, mine, made))
    story.world.settle()
    assert [p.code for p in parked(story.world.hub.store.engine)][-1] == Code.WRONG_AGENCY
    assert all(story.sealed_to(a) == genuine for a in (A, B))

    x = individual_number()
    story.ask(C, A, x)
    story.settle()
    assert story.records(x) == {A} and Code.SEALED_MESSAGE not in story.portal.refused


def test_a_key_message_sealed_to_a_retired_delivery_key_is_sent_again_and_the_page_opens(story: Story) -> None:
    """Broker operator or a hub that holds a message back (availability): A's key message for X's record is
    sealed to key 1 and reaches the portal only after key 1 was retired — refused there (the control: without the
    re-send X's page never opens); the portal asks A through the hub, A sends the key again sealed to the newest
    key, and the page that waited opens."""
    story.settle()
    assert story.sealed_to(A)[1] == 1
    x = individual_number()
    story.records(x)  # the card signs in: no record yet
    story.ask(C, A, x)
    story.world.settle()  # A's key message and record are on their way; the portal has not taken them
    story.later(PERIOD + 1)
    story.portal.announce()  # key 2
    story.later(GRACE + 1)
    story.portal.announce()  # key 1 retired, before the portal took A's key message
    assert story.wires.delivery(story.newest()[0]) is not None and len(story.wires.deliveries()) == 1
    story.settle()
    assert Code.SEALED_MESSAGE in story.portal.refused  # the key message sealed to key 1 did not open
    assert story.records(x) == {A}
    assert list(story.resends(A).values()) == ["sent"]
    assert story.store.waiting() == []


def test_a_lost_key_message_is_sent_again_but_never_an_erased_persons(story: Story) -> None:
    """Insider at the portal or a compromised hub asking for an erased person's wire key back; broker operator
    losing a key message: A's key messages for X's and Y's records never reach the portal (recorded sent, never
    sent), so both pages wait and the portal asks A for both keys; A erases X before the requests arrive. Y's key
    is sent again and Y's page opens; X's key is gone at A — nothing is sent, the portal never holds it, and the
    page shows no record of A's about X. A request for X's key sent to A again later (by a hub) sends nothing."""
    story.settle()
    x, y = individual_number(), individual_number()
    refs = story.key_messages_lost(A, (x, y))
    story.portal.step(timeout_ms=50)  # both pages set aside, both keys asked for
    assert {r for _, r, _, _ in story.store.waiting()} == set(refs.values())

    a = story.world.nodes[A].app
    request = a.request_erasure(Actor(A, "admin"), x, "retention of the provision record ended")
    a.approve_erasure(Actor(A, "admin2"), request)
    story.settle()

    assert story.records(y) == {A}  # Y's key sent again: the page opened
    assert story.records(x) == set()  # X's erased record is not brought back
    assert story.resends(A) == {refs[x]: "gone", refs[y]: "sent"}
    held = {r.hex() for r in story.wires.all_keys()}
    assert refs[y] in held and refs[x] not in held
    assert story.store.waiting() == []

    story.to_inbox(A, WireKeyRequest(A, refs[x], ""))  # asked again, as a hub may
    story.settle()
    assert story.resends(A)[refs[x]] == "gone"
    assert refs[x] not in {r.hex() for r in story.wires.all_keys()}
    sent = story.keys_in_portal_inbox()  # the broker's retention: Y's key went once, X's never
    assert sent.count(refs[y]) == 1 and refs[x] not in sent


def test_a_lost_key_request_is_asked_again_after_resend_after_but_never_an_erased_persons(story: Story) -> None:
    """Broker operator or the network losing a message: the portal's requests for A's wire keys of X's and Y's
    records are dropped on the way to the hub — that must not leave Y's record unreadable to Y's portal until the
    next delivery key (or forever, the loop off). Before ``resend_after_seconds`` nothing is asked again; after
    it the portal asks again (nothing new: the same provider and ref, the newest notice), A sends Y's key again
    and Y's page opens. X is erased at A meanwhile: X's page, dropped by the wire erasure, is never asked for
    again; a request for X's key answered ``gone`` (nothing sent) is not asked again either."""
    resend = 600.0
    assert story.portal.rotation is not None
    story.portal.rotation.settings = DeliveryKeySettings(
        period_seconds=PERIOD, grace_seconds=GRACE, resend_after_seconds=resend
    )
    story.portal.now = story.portal.rotation.now  # the portal's own clock, moved by the story
    story.settle()
    x, y = individual_number(), individual_number()
    refs = story.key_messages_lost(A, (x, y))
    hub_inbox = Topics().inbox(HUB)
    before = story.world.broker.size(hub_inbox)
    assert story.portal.step(timeout_ms=50).waiting == 2  # both pages set aside, both keys asked for
    assert story.portal.step(timeout_ms=20).sent == 2
    lost = requests_on(story, story.world.broker.topics[hub_inbox][before:])
    assert sorted(lost) == sorted([(A, refs[x]), (A, refs[y])])
    del story.world.broker.topics[hub_inbox][before:]  # both requests lost in transit

    a = story.world.nodes[A].app
    request = a.request_erasure(Actor(A, "admin"), x, "retention of the provision record ended")
    a.approve_erasure(Actor(A, "admin2"), request)
    story.settle()
    assert [r for _, r, _, _ in story.store.waiting()] == [refs[y]]  # X's page dropped by the wire erasure

    story.later(resend - 60)
    story.settle()
    assert story.resends(A) == {}  # not asked again yet: the lost requests never reached A
    assert story.records(y) == set()

    story.later(61)
    story.settle()
    assert story.resends(A) == {refs[y]: "sent"}  # asked again for Y's key only: never for the erased X's
    assert requests_on(story, story.world.broker.topics[hub_inbox][before:]) == [(A, refs[y])]  # nothing new
    assert story.records(y) == {A} and story.store.waiting() == []
    assert story.keys_in_portal_inbox().count(refs[y]) == 1

    story.to_inbox(A, WireKeyRequest(A, refs[x], ""))  # asked for X's key, as a hub may: answered gone
    story.settle()
    assert story.resends(A) == {refs[x]: "gone", refs[y]: "sent"}
    story.later(resend + 1)
    assert story.portal.step(timeout_ms=20).sent == 0  # nothing waits: nothing is asked again
    assert refs[x] not in story.keys_in_portal_inbox()
    assert requests_on(story, story.world.broker.topics[hub_inbox][before:]) == [(A, refs[y])]


def requests_on(story: Story, values: list[bytes]) -> list[tuple[str, str]]:
    """(provider, ref) of the portal's key requests among ``values`` on the hub's inbox, opened as the hub."""
    sender_keys = story.world.hub.directory.sender_keys(story.world.nodes[A].app.clock())
    found = []
    for value in values:
        opened = unseal(story.world.hub_keys.sealing, HUB, value, sender_keys)
        if opened.sender == PORTAL and opened.kind == WireKeyRequest.kind:
            request = decode(WireKeyRequest, opened.payload)
            found.append((request.provider, request.ref))
    return found


def test_a_node_whose_entry_names_no_serial_takes_no_notice_until_the_entry_is_imported_again(
    make_node: NodeFactory, backend: str | None, tmp_path: Path
) -> None:
    """The broker operator or a compromised hub replaying an old genuine notice first: A's and C's
        ``linkage.portal`` entries were exported before serials (A's names no delivery key at all, C's names key 2
        with no serial), so nothing tells key 1's notice replayed from a new one. Neither node takes any notice — the
        genuine ones of keys 1 and 2 and key 1's replayed alike are parked ``delivery_unpinned`` — and each seals as
        its entry says (A to the portal's sealing key, C to key 2), a record still opening at the portal, and a key
    message lost is sent again when the portal asks (the notice its request carries is not taken). Once A's
        entry is imported again from the portal's export (key 2, serial 2), A refuses key 1 replayed
        (``delivery_replayed``) and takes key 3 when the portal rotates."""
    with story_of(make_node, backend, tmp_path, exported=False) as story:
        keys = story.world.portal_keys
        assert keys is not None
        story.settle()  # key 1 made and announced: parked at every node
        one = story.wires.newest()
        assert one is not None and one[2] == 1
        replayed = DeliveryKeyNotice.of(keys.signer, 1, delivery_entry(one[0], one[1], 1), one[3])
        story.later(PERIOD + 1)
        story.settle()  # key 2 announced: parked too
        two = story.wires.newest()
        assert two is not None and two[2] == 2
        c = story.world.bridges[C].directory  # C's entry, exported by hand-rotation-era code: key 2, no serial
        c.delivery[PORTAL] = delivery_of(delivery_entry(two[0], two[1]))
        c.delivery_serial[PORTAL] = delivery_serial(delivery_entry(two[0], two[1]))

        for agency in (A, C):
            story.to_inbox(agency, replayed)  # the attacker hands key 1's genuine notice over again
        story.world.settle()
        for agency in (A, C):
            assert story.parked_at(agency) == [Code.DELIVERY_UNPINNED] * 3
            assert delivery_keys(story.world.nodes[agency].engine) == []
        assert story.sealed_to(A) == ("", 0) and story.sealed_to(C) == (two[0], 0)
        x = individual_number()
        story.ask(C, A, x)
        story.settle()
        assert story.records(x) == {A} and Code.SEALED_MESSAGE not in story.portal.refused
        # a key message of A's lost: the portal's request (carrying key 2's notice) is answered all the same, the
        # key sealed as A's entry says; the notice in it is not taken
        y = individual_number()
        refs = story.key_messages_lost(A, (y,))
        story.settle()
        assert story.records(y) == {A} and story.resends(A) == {refs[y]: "sent"}
        assert story.parked_at(A) == [Code.DELIVERY_UNPINNED] * 3 and story.sealed_to(A) == ("", 0)

        # A's operator imports the portal's current export into config.json and restarts: its serial is known
        config = NodeConfig.load(story.world.nodes[A].config.data_dir)
        config.linkage["portal"]["delivery_hex"] = delivery_entry(two[0], two[1], 2)
        config.save()
        imported = linkage_directory(NodeConfig.load(config.data_dir))
        a = story.world.bridges[A].directory
        a.delivery[PORTAL], a.delivery_serial[PORTAL] = imported.delivery[PORTAL], imported.delivery_serial[PORTAL]
        assert story.sealed_to(A) == (two[0], 2)
        story.to_inbox(A, replayed)
        story.world.settle()
        assert story.parked_at(A)[-1] == Code.DELIVERY_REPLAYED and story.sealed_to(A) == (two[0], 2)
        story.later(PERIOD + 1)
        story.settle()
        three = story.newest()
        assert three[1] == 3 and story.sealed_to(A) == three
        assert [k["serial"] for k in delivery_keys(story.world.nodes[A].engine)] == [3]
        assert story.sealed_to(C) == (two[0], 0)  # C, not imported again, still takes none
