"""Copies on the wire (issue 22): after one person among several is erased, no retained record on any topic of
the broker opens to that person's records' contents with any key left at any party — on the in-memory broker
and on Tansu (a plain consumer reading every topic from offset 0).

Threats: the **broker operator** who keeps every topic's retained records, and an **insider at the portal**
(and at the hub, and at every agency: every key they hold together) after the erasure, for as long as the
retention runs. Before the erasure the same scan reads the records (the control: the scan can fail), and
between the erasure and the end of the portal's delivery-key period it still reads them through the retained
key message — which is why the delivery key rotates (docs/erasure.md, copies on the wire).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ledger.errors import NotFoundError
from ledger.hub.log import open_hub_store
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics, Transport
from tests.support.hub_world import A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.portal_world import PortalWorld
from tests.support.wire_scan import every_key_left, opened_from

ITEM, INFO = 74, "地方税関係情報"
MADE = "2026-12-07T12:00:00+09:00"
PARTIES = [HUB, PORTAL, A, B, C, D]

Retained = Callable[[], list[bytes]]


@pytest.fixture(scope="module")
def tansu() -> Iterator[str]:
    from tests.support.tansu import broker

    with broker() as address:
        yield address


def _tansu_records(address: str) -> list[bytes]:
    """Every record of every topic on the broker, from offset 0, read with a plain client and no key."""
    from kafka import KafkaConsumer

    from tests.integration.test_linkage_kafka import raw_records

    lister = KafkaConsumer(bootstrap_servers=address)
    try:
        topics = sorted(lister.topics())
    finally:
        lister.close()
    # to each inbox's end offset, not until an idle timeout: a short read would let the test pass on too little
    return [r for records in raw_records(address, topics).values() for r in records if r]


@pytest.fixture(params=["memory", pytest.param("tansu", marks=pytest.mark.kafka)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[PortalWorld, Retained]]:
    hub = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    with ExitStack() as stack:
        stack.callback(hub.close)
        open_transport: Callable[[str], Transport]
        if request.param == "memory":
            broker = MemoryBroker()
            open_transport = lambda p: MemoryTransport(broker, p)  # noqa: E731
            retained: Retained = lambda: [v for values in broker.topics.values() for v in values]  # noqa: E731
        else:
            from consumers.kafka_transport import KafkaTransport, ensure_inboxes
            from consumers.settings import KafkaSettings

            address = request.getfixturevalue("tansu")
            cfg = KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
            topics = Topics(f"w{uuid.uuid4().hex[:8]}")
            ensure_inboxes(cfg, topics, PARTIES)

            def open_transport(party: str) -> Transport:
                t = KafkaTransport(cfg, party, topics)
                stack.callback(t.close)
                return t

            retained = lambda: _tansu_records(address)  # noqa: E731
        pw = PortalWorld.open(Cast.of(A, B, C, D), hub, tmp_path / "portal.sqlite", open_transport)
        stack.callback(pw.close)
        yield pw, retained


def procedure(tag: str) -> str:
    """A procedure text that is one person's and one provider's alone, so a scan can tell whose it is."""
    return f"児童手当{tag}{uuid.uuid4().hex[:8]}"


def shown(pw: PortalWorld, number: str, want: set[str], seconds: float = 30) -> set[str]:
    """The procedures of the person's page once it shows ``want`` (the loops turned until then, or time is up)."""
    deadline, got = time.monotonic() + seconds, set()
    while time.monotonic() < deadline:
        pw.settle()
        try:
            got = {r.procedure for r in pw.page(number).records}
        except NotFoundError:
            got = set()
        if got == want:
            break
    return got


def found(pw: PortalWorld, retained: Retained, texts: list[str]) -> set[str]:
    """Which of ``texts`` any retained record yields, opened with every key left at every party."""
    plain = opened_from(retained(), every_key_left(pw))
    return {t for t in texts if any(t.encode() in p for p in plain)}


def test_after_an_erasure_no_retained_record_opens_to_the_erased_persons_records(
    world: tuple[PortalWorld, Retained],
) -> None:
    """Broker operator and insider at the portal (with every key left at the agencies, the hub and the portal):
    A erases X among X, Y and Z. Before, the broker's retention opens to A's and B's records about X, A's
    about Y and C's about Z; after the erasure and the end of the portal's delivery-key period none of A's
    records about X opens from any record on any topic, while the others still do (through the portal's wire
    keys) and every page shows as before but for A's record about X."""
    pw, retained = world
    x, y, z = individual_number(), individual_number(), individual_number()
    a_x, b_x, a_y, c_z = procedure("ax"), procedure("bx"), procedure("ay"), procedure("cz")
    a = pw.world.agencies[A]
    a.record(x, C, a_x, ITEM, INFO, "provided", MADE)
    pw.world.agencies[B].record(x, C, b_x, ITEM, INFO, "provided", MADE)
    a.record(y, D, a_y, ITEM, INFO, "provided", MADE)
    pw.world.agencies[C].record(z, D, c_z, ITEM, INFO, "provided", MADE)
    pages = {x: {a_x, b_x}, y: {a_y}, z: {c_z}}
    for number, want in pages.items():
        assert shown(pw, number, want) == want
    texts = [a_x, b_x, a_y, c_z]
    assert found(pw, retained, texts) == set(texts)  # the control: the scan reads what the wire carries

    pw.erase(A, x)
    assert shown(pw, x, {b_x}) == {b_x}
    # still readable: the key message on the broker opens with the delivery key of this period
    assert a_x in found(pw, retained, texts)

    pw.rotate()  # the period ends: a new delivery key, the old private half destroyed

    assert found(pw, retained, texts) == {b_x, a_y, c_z}
    assert shown(pw, y, {a_y}) == {a_y} and shown(pw, z, {c_z}) == {c_z} and shown(pw, x, {b_x}) == {b_x}
    assert pw.wires is not None and [e["sender"] for e in pw.wires.erasures()] == [A]  # the portal's record
    # after the rotation the providers seal new keys to the new delivery key: a new person still shows
    w, a_w = individual_number(), procedure("aw")
    a.record(w, C, a_w, ITEM, INFO, "provided", MADE)
    assert shown(pw, w, {a_w}) == {a_w}


def test_a_peer_cannot_destroy_another_providers_wire_keys_at_the_portal(tmp_path: Path) -> None:
    """Peer agency wiping another's evidence at the portal: C relays a wire erasure naming A's wire key for X
    (handed its ref here; on the wire C never sees it) — the portal destroys nothing, records nothing, and A's
    record still shows; A's own erasure then destroys it."""
    hub = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    broker = MemoryBroker()
    pw = PortalWorld.open(Cast.of(A, B, C, D), hub, tmp_path / "portal.sqlite", lambda p: MemoryTransport(broker, p))
    try:
        x, a_x = individual_number(), procedure("ax")
        pw.world.agencies[A].record(x, C, a_x, ITEM, INFO, "provided", MADE)
        assert shown(pw, x, {a_x}) == {a_x}
        assert pw.wires is not None
        [ref] = pw.wires.all_keys()
        c = pw.world.agencies[C]
        c.send(c.wire_erasure(uuid.uuid4().hex, [ref.hex()]))
        pw.settle()
        assert list(pw.wires.all_keys()) == [ref] and pw.wires.erasures() == []
        assert {r.procedure for r in pw.page(x).records} == {a_x}
        pw.erase(A, x)
        assert pw.wires.all_keys() == {} and [e["sender"] for e in pw.wires.erasures()] == [A]
        assert shown(pw, x, set()) == set()
    finally:
        pw.close()
        hub.close()
