"""The portal's delivery-key announcement and the re-send of a lost key message (issue 22, docs/erasure.md "copies
on the wire") on a real Kafka-protocol broker (Tansu): the agency nodes in hub mode, the hub and the portal each
on their own transport, as ``tests/integration/test_delivery_keys.py`` runs them on the in-memory broker.

Threats: the insider at the portal after an erasure and the broker operator keeping the topics (the reason the
delivery key rotates and a retired key's message is refused); the broker operator or network losing a key
message (it is asked for again), and an insider asking for an erased person's key back (never sent).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.errors import Code, FlagLedgerError
from ledger.hub.tables import hub_sealed_records
from ledger.linkage.messages import decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import Topics
from ledger.linkage.wire_keys import SubjectKey
from tests.conftest import NodeFactory
from tests.integration.test_delivery_keys import GRACE, PERIOD, Story, story_of
from tests.integration.test_linkage_kafka import raw_records
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


@pytest.fixture
def story(bootstrap: str, make_node: NodeFactory, tmp_path: Path) -> Iterator[tuple[Story, str, Topics]]:
    """:func:`story_of` (SQLite, the agencies joined with the portal's exported entry) with every party — the
    nodes' bridges, the hub and the portal — on Tansu, topics of their own."""
    cfg = KafkaSettings(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(f"d{uuid.uuid4().hex[:8]}")
    ensure_inboxes(cfg, topics, [HUB, PORTAL, A, B, C])
    opened: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        opened.append(t := KafkaTransport(cfg, party, topics))
        return t

    try:
        with story_of(make_node, None, tmp_path, True, open_transport) as s:
            yield s, bootstrap, topics
    finally:
        for t in opened:
            t.close()


def until(story: Story, done: Callable[[], bool], seconds: float = 90) -> None:
    """Turn every party's loop until ``done`` (a broker hands records over when it does, not at once)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        story.settle(rounds=2)
    assert done()


def _records_at_hub(story: Story) -> int:
    """How many sealed records of A's the hub filed (each fed to the portal as a page)."""
    with story.world.hub.store.engine.connect() as conn:
        rows = conn.execute(select(hub_sealed_records.c.record_id).where(hub_sealed_records.c.provider == A))
        return len(rows.all())


def _turn_all_but(story: Story, agency: str) -> None:
    """One turn of every party's loop but ``agency``'s pull: what the hub sends it waits on its inbox."""
    w = story.world
    for bridge in w.bridges.values():
        bridge.push()
    w.hub.step(timeout_ms=20)
    story.feed.step()
    w.hub.step(timeout_ms=20)
    for code, bridge in w.bridges.items():
        if code != agency:
            bridge.pull(timeout_ms=20)
    story.portal.step(timeout_ms=50)


def page(story: Story, number: str) -> set[str] | None:
    """The providers on the person's page; None while the card's sign-in has not gone through yet."""
    try:
        return story.records(number)
    except FlagLedgerError:
        return None


def keys_on_portal_inbox(story: Story, address: str, topics: Topics) -> list[str]:
    """The refs of every ``subject_key`` the broker retains on the portal's inbox, read from offset 0."""
    keys = story.world.portal_keys
    assert keys is not None
    sender_keys = story.world.hub.directory.sender_keys(story.world.nodes[A].app.clock())
    refs = []
    for value in raw_records(address, [topics.inbox(PORTAL)])[topics.inbox(PORTAL)]:
        opened = unseal(keys.sealing, PORTAL, value, sender_keys)
        if opened.kind == SubjectKey.kind:
            refs.append(decode(SubjectKey, opened.payload).ref)
    return refs


def test_the_announced_delivery_key_reaches_every_node_on_tansu(story: tuple[Story, str, Topics]) -> None:
    """Insider at the portal after an erasure, broker operator keeping the topics: once the period ended the
    portal's signed notice of key 2 reaches A, B and C through the hub on Tansu and their bridges seal to it (key
    1 until then: the control); key 1 is retired after the grace, and a record A sends then opens at the portal
    — its key message sealed to key 2, nothing refused."""
    s, _, _ = story
    until(s, lambda: all(s.sealed_to(a) == s.newest() for a in (A, B, C)))
    first = s.newest()
    assert first[1] == 1
    s.later(PERIOD + 1)
    until(s, lambda: s.newest()[1] == 2 and all(s.sealed_to(a) == s.newest() for a in (A, B, C)))
    second = s.newest()
    assert second != first
    s.later(GRACE + 1)
    until(s, lambda: len(s.wires.deliveries()) == 1)
    assert s.wires.delivery(first[0]) is None and s.wires.delivery(second[0]) is not None

    x = individual_number()
    until(s, lambda: page(s, x) is not None)  # the card signs in: no record yet
    s.ask(C, A, x)
    until(s, lambda: page(s, x) == {A})
    assert Code.SEALED_MESSAGE not in s.portal.refused
    assert all(s.parked_at(a) == [] for a in (A, B, C))


def test_a_key_message_sealed_to_a_retired_key_is_asked_for_and_sent_again_on_tansu(
    story: tuple[Story, str, Topics],
) -> None:
    """Broker operator or a hub holding a message back: A's key message for X's record is sealed to key 1 and
    taken by the portal only after key 1 was retired — refused (the control: the page waits); the portal asks A
    through the hub on Tansu, A sends the key again sealed to key 2, and X's page opens."""
    s, _, _ = story
    until(s, lambda: s.sealed_to(A)[1] == 1)
    x = individual_number()
    until(s, lambda: page(s, x) is not None)
    dk = s.world.nodes[A].app.signed_mapper.data_keys
    assert dk is not None
    s.ask(C, A, x)
    subject = s.world.bridges[A].file_person(x)  # filed already (the ask): its subject at A

    def sent() -> bool:  # A's bridge sealed and sent X's key message (to key 1); the portal has not stepped
        s.world.settle(rounds=2)
        return bool(dk.wire_key(subject, PORTAL)[2])

    deadline = time.monotonic() + 90
    while not sent() and time.monotonic() < deadline:
        pass
    assert sent()
    s.later(PERIOD + 1)
    s.portal.announce()  # key 2
    s.later(GRACE + 1)
    s.portal.announce()  # key 1 retired before the portal took A's key message
    assert len(s.wires.deliveries()) == 1
    until(s, lambda: page(s, x) == {A})
    assert Code.SEALED_MESSAGE in s.portal.refused  # the key message sealed to key 1 did not open
    assert list(s.resends(A).values()) == ["sent"] and s.store.waiting() == []


def test_a_lost_key_message_is_sent_again_on_tansu_but_never_an_erased_persons(
    story: tuple[Story, str, Topics],
) -> None:
    """Broker operator losing key messages, an insider asking for an erased person's key back: A's key messages
    for X's and Y's records never reach the portal, whose pages wait and ask A for both; A erases X meanwhile.
    Y's key is sent again on Tansu and Y's page opens; X's is answered ``gone`` — the broker's retention of the
    portal's inbox, read from offset 0, holds Y's key once and X's never."""
    s, address, topics = story
    until(s, lambda: s.sealed_to(A)[1] == 1)
    x, y = individual_number(), individual_number()
    until(s, lambda: page(s, x) is not None and page(s, y) is not None)  # the cards sign in: no record yet
    dk = s.world.nodes[A].app.signed_mapper.data_keys
    assert dk is not None
    refs = {}
    for number in (x, y):
        subject = s.world.bridges[A].file_person(number)
        ref, _, _ = dk.wire_key(subject, PORTAL)
        dk.wire_delivered(ref)  # as if sent: the key message lost on the way
        refs[number] = ref.hex()
        s.ask(C, A, number)
    waiting = set(refs.values())
    deadline = time.monotonic() + 90
    while _records_at_hub(s) < 2 and time.monotonic() < deadline:  # A answers C; the hub files both records
        s.world.settle(rounds=2)  # (no feed, no portal: no page is taken yet)
    assert _records_at_hub(s) == 2
    # the portal takes both pages and asks A for both keys; A does not pull its inbox until it erased X (as on
    # the in-memory broker the requests arrive after the erasure)
    deadline = time.monotonic() + 90
    while {r for _, r, _, _ in s.store.waiting()} != waiting and time.monotonic() < deadline:
        _turn_all_but(s, A)
    assert {r for _, r, _, _ in s.store.waiting()} == waiting

    a = s.world.nodes[A].app
    request = a.request_erasure(Actor(A, "admin"), x, "retention of the provision record ended")
    a.approve_erasure(Actor(A, "admin2"), request)
    until(s, lambda: page(s, y) == {A} and s.resends(A) == {refs[x]: "gone", refs[y]: "sent"})
    assert page(s, x) == set()  # X's erased record is not brought back
    held = {r.hex() for r in s.wires.all_keys()}
    assert refs[y] in held and refs[x] not in held
    sent = keys_on_portal_inbox(s, address, topics)
    assert sent.count(refs[y]) == 1 and refs[x] not in sent
