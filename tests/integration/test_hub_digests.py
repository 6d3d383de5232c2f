"""The hub's digest schedule on the in-memory transport, on SQLite and PostgreSQL: one fixed-size digest per inbox
per tick, what does not fit waiting for the next, nothing lost or read twice across a lost outbox delete, and
an agency's end refusing digests that are not the hub's or do not add up.

Threats, per test: the broker operator (sizes and counts per tick; re-injecting), a peer agency or the operator
writing a forged digest into an inbox, a crash between the send and the outbox delete, an administrator's
second hub (a standby sends no digests).
"""

from __future__ import annotations

import struct
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from ledger.errors import Code, ConfigurationError, InputError, IntegrityError
from ledger.hub.digests import DigestSchedule
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.service import HubService
from ledger.hub.tables import hub_outbox
from ledger.linkage.digests import DIGEST_KIND, DIGEST_SIZE, pack, room, seal_digest, unpack
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import RoutedQuery
from ledger.linkage.names import HUB
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from tests.support.hub_world import START, A, B, C, Cast, D, World
from tests.support.people import individual_number

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
PER_DIGEST = 3  # answer-sized messages in one 16 384 digest


@pytest.fixture
def hub_url(backend: str | None, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend


@pytest.fixture
def stores() -> Iterator[list[HubStore]]:
    opened: list[HubStore] = []
    yield opened
    for store in opened:
        store.close()


def scheduled(stores: list[HubStore], url: str) -> tuple[World, MemoryBroker]:
    broker = MemoryBroker()
    stores.append(store := open_hub_store(url, "hub-1"))
    w = World.open(Cast.of(A, B, C, D), store, lambda p: MemoryTransport(broker, p))
    w.hub.digests = DigestSchedule()
    return w, broker


def inbox_sizes(broker: MemoryBroker) -> dict[str, list[int]]:
    return {t: [len(m) for m in ms] for t, ms in broker.topics.items() if t != Topics().inbox(HUB)}


def test_what_does_not_fit_waits_for_the_next_tick_and_every_inbox_gets_one_digest(
    hub_url: str, stores: list[HubStore]
) -> None:
    """Broker operator: five routed queries to A take two ticks; every tick every inbox gets exactly one digest
    of one size, A's no larger for carrying three than D's for carrying none."""
    w, broker = scheduled(stores, hub_url)
    people = [individual_number() for _ in range(5)]
    for x in people:
        w.agencies[A].file_person(x)
        w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert broker.topics.get(Topics().inbox(A)) is None  # decided, owed, not sent off the schedule
    got = []
    for _ in range(3):
        assert w.hub.tick() == 4
        got.append(len(w.inbox(A, timeout_ms=0)))
    assert got == [PER_DIGEST, 5 - PER_DIGEST, 0]
    sizes = inbox_sizes(broker)
    assert set(sizes) == {Topics().inbox(n) for n in (A, B, C, D)}
    assert all(s == [sizes[Topics().inbox(A)][0]] * 3 for s in sizes.values())
    with stores[0].engine.connect() as conn:
        assert conn.execute(select(hub_outbox.c.id)).all() == []


def test_a_digest_sent_again_after_a_lost_delete_is_read_once(hub_url: str, stores: list[HubStore]) -> None:
    """Crash between the send and the outbox delete (the rows come back): the next digest carries the same
    messages again, and the agency's end drops them by their event ids."""
    w, _ = scheduled(stores, hub_url)
    x = individual_number()
    w.agencies[A].file_person(x)
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    with stores[0].engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(hub_outbox.c.recipient, hub_outbox.c.message))]
    w.hub.tick()
    with stores[0].engine.begin() as conn:
        conn.execute(insert(hub_outbox), rows)  # as if the delete had been lost
    w.hub.tick()
    first, second = w.inbox(A, timeout_ms=0), w.inbox(A, timeout_ms=0)
    assert [type(i.message) for i in first] == [RoutedQuery] and second == []
    assert w.agencies[A].refused == []


def test_an_agency_refuses_a_digest_that_is_not_the_hubs_or_does_not_add_up(
    hub_url: str, stores: list[HubStore]
) -> None:
    """Peer agency or broker operator writing into A's inbox: a digest B sealed to A (``wrong_route``), the hub's
    digest with cut framing (``malformed``), the hub's digest carrying a message sealed to B (``misaddressed``)
    are refused; the genuine digest behind them is read."""
    w, broker = scheduled(stores, hub_url)
    cast, directory = w.cast, w.agencies[A].directory
    a_key, b_key = directory.sealing_key(A), directory.sealing_key(B)
    size = DIGEST_SIZE
    inbox = Topics().inbox(A)

    def digest(sender: PartyKeys, payload: bytes) -> bytes:
        return seal(sender.signer, a_key, A, uuid.uuid4().hex, DIGEST_KIND, payload, size)

    for_b = seal(cast.hub.signer, b_key, B, uuid.uuid4().hex, "routed_query", b"{}", 4096)
    broker.append(inbox, digest(cast.agencies[B], pack([], 100)[0]))
    broker.append(inbox, digest(cast.hub, struct.pack(">H", 2) + struct.pack(">I", 10) + b"short"))
    broker.append(inbox, digest(cast.hub, pack([for_b], room(size, cast.hub.signer.key_id))[0]))
    x = individual_number()
    w.agencies[A].file_person(x)
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    w.hub.tick()
    got = w.inbox(A, timeout_ms=0)
    assert w.agencies[A].refused == [Code.WRONG_ROUTE, Code.MALFORMED, Code.MISADDRESSED]
    assert [type(i.message) for i in got] == [RoutedQuery]


def test_a_standby_sends_no_digests_and_the_running_loop_ticks_on_its_schedule(
    hub_url: str, stores: list[HubStore]
) -> None:
    """Administrator's second hub: a standby without the lease ticks nothing (two hubs would double every
    inbox's count). The running loop ticks by itself: one digest per inbox arrives without a tick by hand."""
    w, broker = scheduled(stores, hub_url)
    assert w.hub.lead()
    stores.append(standby_store := open_hub_store(hub_url, "hub-2"))
    standby = HubService(
        standby_store, MemoryTransport(broker, HUB), w.cast.hub, w.cast.directory(), lambda: START, DigestSchedule()
    )
    assert standby.tick() == 0 and inbox_sizes(broker) == {}
    stop = threading.Event()
    loop = threading.Thread(target=w.hub.run, args=(stop,), daemon=True)
    loop.start()
    try:
        for name in (A, B, C, D):  # waits on the broker for the first digest, no sleep
            assert broker.read(Topics().inbox(name), 0, 1, timeout_s=10)
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()


def test_digest_framing_and_schedule_bounds() -> None:
    """A broken or hostile sender's framing and a mistyped configuration: refused with ledger errors."""
    messages = [b"a" * 10, b"b" * 20, b"c" * 30]
    payload, taken = pack(messages, 2 + 14 + 24)
    assert taken == 2 and unpack(payload) == messages[:2]
    assert unpack(pack([], 100)[0]) == []
    for bad in (b"", b"\x00", b"\x00\x01", b"\x00\x01\x00\x00\x00\x05abc", b"\x00\x00extra"):
        with pytest.raises(IntegrityError) as refused:
            unpack(bad)
        assert refused.value.code == Code.MALFORMED
    for kwargs in ({"every": 0.0}, {"every": 7200.0}, {"size": 1000}):
        with pytest.raises(ConfigurationError):
            DigestSchedule(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        room(5000, "hub-x")
    # a message larger than the digest goes alone in the bucket that holds it, never blocking the queue
    signer, key = Cast.of(A).hub.signer, Cast.of(A).agencies[A].sealing
    big, small = b"x" * 20_000, b"y" * 10
    digest, taken = seal_digest(signer, key.public_key(), A, [big, small], DIGEST_SIZE)
    assert taken == 2 and len(digest) > 65536 > DIGEST_SIZE  # the bigger digest carries what follows too
    digest, taken = seal_digest(signer, key.public_key(), A, [small, big], DIGEST_SIZE)
    assert taken == 1 and len(digest) < DIGEST_SIZE + 200
    with pytest.raises(InputError) as refused:
        seal_digest(signer, key.public_key(), A, [b"z" * 300_000], DIGEST_SIZE)
    assert refused.value.code == Code.OVERSIZE
    t = [0.0]
    schedule = DigestSchedule(every=2.0, clock=lambda: t[0])
    assert schedule.due()
    schedule.ticked()
    t[0] = 1.9
    assert not schedule.due()
    t[0] = 2.0
    assert schedule.due()


def test_the_hub_takes_an_agencys_digest_as_its_messages_and_nothing_more(hub_url: str, stores: list[HubStore]) -> None:
    """Peer agency and broker operator, on the agencies' schedule: every agency sends one digest per tick
    whatever it does; the hub handles what it carries as if each had come alone — a replayed digest is dropped
    message by message, a digest carrying another agency's message is parked whole (``wrong_agency``), a
    digest inside a digest parked (``malformed``); what does not fit an agency's digest waits for its next."""
    w, broker = scheduled(stores, hub_url)
    for end in w.agencies.values():
        end.schedule()
    hub_topic = Topics().inbox(HUB)
    people = [individual_number() for _ in range(8)]
    for x in people:
        w.agencies[A].file_person(x)
        w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)  # files x at C too: sixteen registrations and queries
    assert broker.topics.get(hub_topic) is None  # queued, not sent off the schedule
    carried = [w.agencies[n].tick() for n in (A, B, C, D)]
    assert carried[0] == 8 and carried[1] == carried[3] == 0 and 0 < carried[2] < 16  # C's do not fit one
    assert {len(m) for m in broker.topics[hub_topic]} == {len(broker.topics[hub_topic][0])}
    while any(w.agencies[n].outgoing for n in (A, C)):
        w.agencies[C].tick()
    applied = sum(s.applied for s in w.settle())
    assert applied == 24

    # the broker operator replays A's first digest: every message in it was applied, so all are dropped
    broker.append(hub_topic, broker.topics[hub_topic][0])
    assert sum(s.replays for s in w.settle()) == 8

    # B batches a message A signed (taken off the wire): the whole digest is parked
    a_query = seal(
        w.cast.agencies[A].signer, w.cast.directory().sealing_key(HUB), HUB, uuid.uuid4().hex, "query", b"{}"
    )
    b_end = w.agencies[B]
    hub_key = b_end.directory.sealing_key(HUB)
    forged, _ = seal_digest(w.cast.agencies[B].signer, hub_key, HUB, [a_query], DIGEST_SIZE)
    nested_inner, _ = seal_digest(w.cast.agencies[B].signer, hub_key, HUB, [], DIGEST_SIZE // 4)
    nested, _ = seal_digest(w.cast.agencies[B].signer, hub_key, HUB, [nested_inner], DIGEST_SIZE)
    for message in (forged, nested):
        broker.append(hub_topic, message)
    w.settle()
    assert [(p.code, p.claimed_sender) for p in parked(w.hub.store.engine)] == [
        (Code.WRONG_AGENCY, B),
        (Code.MALFORMED, B),
    ]
