"""The hub's message loop on the in-memory transport, on SQLite and PostgreSQL: the seed scenario end to end,
and what the loop refuses, drops and parks.

Threats, per test: the perpetrator (through the querier's answer and a counter at C), a peer agency (routing
in another's name, answering another's request), the broker operator (what the topics carry; re-injecting a
message), an administrator starting a second hub (the standby), and a poison message (parked, not blocking).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ledger.errors import BrokerUnavailable, Code
from ledger.hub.inbox import owed, parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.tables import hub_applied, hub_codes, hub_flag_changes, hub_records, hub_requests, hub_sealed_records
from ledger.linkage.agency import Inbound
from ledger.linkage.buckets import ANSWER_SIZE, BUCKETS
from ledger.linkage.codes import Registration
from ledger.linkage.messages import AnswerMessage, Consultation, QueryMessage, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import read_header, seal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from ledger.log.signing import Signer
from tests.support.hub_world import START, A, B, C, Cast, D, World, normalised, values
from tests.support.people import individual_number

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
WIRE_OVERHEAD = 12 + 3 + 6 + 32 + 32 + 16  # magic and four lengths, "hub" and a 6-digit agency, event id, enc, tag


@pytest.fixture
def hub_url(backend: str | None, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend


@pytest.fixture
def stores(hub_url: str) -> Iterator[list[HubStore]]:
    opened: list[HubStore] = []
    yield opened
    for store in opened:
        store.close()


def open_store(stores: list[HubStore], url: str, who: str = "hub-1") -> HubStore:
    stores.append(store := open_hub_store(url, who))
    return store


def world(stores: list[HubStore], url: str, cast: Cast | None = None) -> tuple[World, MemoryBroker]:
    broker = MemoryBroker()
    w = World.open(cast or Cast.of(A, B, C, D, PORTAL), open_store(stores, url), lambda p: MemoryTransport(broker, p))
    return w, broker


def count(store: HubStore, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_seed_c_asks_a_about_x_protected_at_b(hub_url: str, stores: list[HubStore]) -> None:
    """Perpetrator (C's counter, the querier's answer), peer agency (the provider A), broker operator."""
    w, broker = world(stores, hub_url)
    x, z = individual_number(), individual_number()
    w.agencies[B].flag(x, "NON_DISCLOSURE", "set")  # X fled to B; B protects X (filing X first)
    w.agencies[B].flag(x, "NO_AUTO_RESPONSE", "set")
    w.agencies[A].file_person(x)  # A, X's old municipality, holds X's tax data
    w.agencies[A].file_person(z)
    mine = w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    steps = w.settle()
    assert sum(s.applied for s in steps) == 7 and sum(s.parked for s in steps) == 0

    # A, the provider, is told "staff answer": no reason, no holder, its own code, a fresh id (not C's)
    [routed] = [i.message for i in w.inbox(A)]
    assert isinstance(routed, RoutedQuery)
    assert routed.answer == "staff" and routed.querier == C and routed.code == w.agencies[A].code(x)
    assert routed.request_id != mine and B not in values(routed)
    # B, the holder, is consulted on A's request: its own code, never the querier
    [consult] = [i.message for i in w.inbox(B)]
    assert consult == Consultation(routed.request_id, A, w.agencies[B].code(x), PROCEDURE, ITEM, INFO)
    assert C not in values(consult)
    assert w.inbox(C) == [] and w.inbox(D) == []  # no answer yet; D holds nothing and hears nothing

    # A's staff will answer later; what C hears now is any manual answer's "in progress"
    w.agencies[A].answer(routed.request_id, "in_progress")
    w.settle()
    [held] = w.inbox(C)
    assert held.message == AnswerMessage(mine, "in_progress", "")

    # control: Z is protected nowhere; the same query is answered automatically, and a provider answering Z
    # by hand for its own reasons gives C exactly what the flag gave it
    auto_q = w.agencies[C].query(z, A, PROCEDURE, ITEM, INFO)
    w.settle()
    [auto] = [i.message for i in w.inbox(A)]
    assert isinstance(auto, RoutedQuery) and auto.answer == "auto"
    assert w.inbox(B) == []  # no holder, no consultation
    w.agencies[A].answer(auto.request_id, "in_progress")
    w.settle()
    manual = w.inbox(C)
    assert normalised(manual, auto_q) == normalised([held], mine)
    w.agencies[A].answer(auto.request_id, "answered", "課税所得 0")
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(auto_q, "answered", "課税所得 0")]

    # A files its record of the held request: in the hub's sequence, under the hub's person id, sealed
    w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "held", "2026-01-01T09:00:00+09:00")
    w.settle()
    with w.hub.store.engine.connect() as conn:
        [(seq, person, provider)] = conn.execute(
            select(hub_sealed_records.c.seq, hub_sealed_records.c.person, hub_sealed_records.c.provider)
        )
    assert provider == A and person == w.hub.store.codes.person(B, w.agencies[B].code(x))
    assert seq == w.hub.store.sequencer.last() - 0 or seq < w.hub.store.sequencer.last() + 1

    # the broker operator: sealed bucket-sized messages only; every hub → agency message is one size
    topics = Topics()
    for topic, messages in broker.topics.items():
        for m in messages:
            header = read_header(m)
            assert topic == topics.inbox(header.recipient)
            size = len(m) - WIRE_OVERHEAD
            assert size in BUCKETS
            if header.sender == HUB:
                assert size == ANSWER_SIZE
            for secret in (x, z, w.agencies[A].code(x), w.agencies[B].code(x), PROCEDURE, "staff", "consultation"):
                assert secret.encode() not in m


def test_a_peer_cannot_act_in_another_agencys_name(hub_url: str, stores: list[HubStore]) -> None:
    """Peer agency: B routing as A, registering in A's name, answering A's request, asking under A's code."""
    w, broker = world(stores, hub_url)
    x = individual_number()
    w.agencies[A].file_person(x)
    q = w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    [routed] = [i.message for i in w.inbox(A)]
    b, hub_key = w.cast.agencies[B], w.cast.directory().sealing_key(HUB)
    inbox = Topics().inbox(HUB)

    def send(signer: Signer, kind: str, payload: bytes) -> None:
        broker.append(inbox, seal(signer, hub_key, HUB, uuid.uuid4().hex, kind, payload))

    forged = Signer(A, b.signer._private)  # B's own key, A's name in the header
    send(forged, "query", QueryMessage(uuid.uuid4().hex, w.agencies[A].code(x), C, PROCEDURE, ITEM, INFO).encode())
    send(b.signer, "registration", Registration(A, w.agencies[A].code(x), individual_number()).encode())
    send(b.signer, "answer", AnswerMessage(routed.request_id, "answered", "forged").encode())
    send(b.signer, "query", QueryMessage(uuid.uuid4().hex, w.agencies[A].code(x), D, PROCEDURE, ITEM, INFO).encode())
    codes_before = count(w.hub.store, hub_codes)
    [step] = w.settle()[:1]
    assert step.parked == 4 and step.applied == 0
    assert [p.code for p in parked(w.hub.store.engine)] == [
        Code.UNKNOWN_KEY,
        Code.WRONG_AGENCY,
        Code.NOT_FOUND,
        Code.NOT_FOUND,
    ]
    assert count(w.hub.store, hub_codes) == codes_before
    assert w.inbox(C) == [] and w.inbox(D) == [] and w.inbox(A) == []  # nothing relayed for the forger
    w.agencies[A].answer(routed.request_id, "answered", "genuine")
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(q, "answered", "genuine")]


def test_a_standby_hub_handles_nothing_until_it_leads(hub_url: str, stores: list[HubStore]) -> None:
    """An administrator starting a second hub: one leader; the standby neither handles nor commits."""
    broker, cast = MemoryBroker(), Cast.of(A, B, C, D)
    leader = World.open(cast, open_store(stores, hub_url, "hub-1"), lambda p: MemoryTransport(broker, p))
    standby = World.open(cast, open_store(stores, hub_url, "hub-2"), lambda p: MemoryTransport(broker, p))
    x = individual_number()
    assert leader.hub.lead()
    leader.agencies[B].flag(x, "NO_AUTO_RESPONSE", "set")
    first = standby.hub.step(timeout_ms=50)
    assert first.standby and first.applied == 0
    assert broker.committed.get(Topics().inbox(HUB), 0) == 0  # left for the leader
    assert count(leader.hub.store, hub_flag_changes) == 0
    assert sum(s.applied for s in leader.settle()) == 2
    leader.agencies[A].file_person(x)
    leader.hub.store.sequencer.release()  # the leader lets go (or dies) with A's registration unhandled
    assert sum(s.applied for s in standby.settle()) == 1  # the standby takes over and handles it, once
    assert standby.hub.store.codes.person(A, leader.agencies[A].code(x)) is not None
    assert count(standby.hub.store, hub_applied) == 3


def test_a_replay_is_dropped_and_a_lost_commit_applies_nothing_twice(hub_url: str, stores: list[HubStore]) -> None:
    """Broker operator re-injecting messages; a hub that died between its database commit and the inbox's."""
    w, broker = world(stores, hub_url)
    x = individual_number()
    w.agencies[B].flag(x, "NON_DISCLOSURE", "set")
    w.agencies[A].file_person(x)
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    inbox = Topics().inbox(HUB)
    sequenced, a_messages = w.hub.store.sequencer.last(), len(broker.topics[Topics().inbox(A)])
    for m in list(broker.topics[inbox]):  # the operator re-injects every message
        broker.append(inbox, m)
    steps = w.settle()
    assert sum(s.replays for s in steps) == 5 and sum(s.applied for s in steps) == 0
    broker.committed[inbox] = 0  # the inbox's commit was lost: all of it is handed over again
    again = World.open(w.cast, w.hub.store, lambda p: MemoryTransport(broker, p))
    assert sum(s.replays for s in again.settle()) == 10
    assert w.hub.store.sequencer.last() == sequenced  # nothing filed, numbered or routed twice
    assert len(broker.topics[Topics().inbox(A)]) == a_messages
    assert count(w.hub.store, hub_flag_changes) == 1 and count(w.hub.store, hub_requests) == 1


def test_poison_messages_are_parked_with_their_reason_and_do_not_block(hub_url: str, stores: list[HubStore]) -> None:
    """Broker operator or a broken peer: junk, a cut message, one for A, a bad payload, an unknown kind."""
    w, broker = world(stores, hub_url)
    x = individual_number()
    inbox, b = Topics().inbox(HUB), w.cast.agencies[B]
    hub_key, a_key = w.cast.directory().sealing_key(HUB), w.cast.directory().sealing_key(A)
    genuine = seal(b.signer, hub_key, HUB, uuid.uuid4().hex, "query", b"{}")
    for poison in (
        b"junk",
        genuine[:-7],
        seal(b.signer, a_key, A, uuid.uuid4().hex, "query", b"{}"),  # sealed to A, put on the hub's topic
        genuine,  # opens, but holds no query
        seal(b.signer, hub_key, HUB, uuid.uuid4().hex, "gossip", b"{}"),
        seal(b.signer, hub_key, HUB, uuid.uuid4().hex, "query", b"[" * 100_000),  # deeper than the parser goes
    ):
        broker.append(inbox, poison)
    w.agencies[A].file_person(x)  # behind the poison: still handled
    [step] = w.settle()[:1]
    assert (step.parked, step.applied) == (6, 1)
    found = parked(w.hub.store.engine)
    malformed, misaddressed = Code.MALFORMED, Code.MISADDRESSED
    assert [p.code for p in found] == [malformed, malformed, misaddressed, malformed, malformed, malformed]
    assert found[2].message == broker.topics[inbox][2] and all(p.reason for p in found)
    assert broker.committed[inbox] == 7  # committed past everything: nothing blocks, nothing is lost


class FailingFlush(MemoryTransport):
    """The broker refusing the hub's sends, once."""

    fail = True

    def flush(self) -> None:
        if self.fail:
            self.fail = False
            raise BrokerUnavailable("the broker is down")


def test_what_the_hub_owes_survives_a_broker_outage(hub_url: str, stores: list[HubStore]) -> None:
    """Network, broker operator: a decision made but not delivered is delivered later, once, in order."""
    broker, cast = MemoryBroker(), Cast.of(A, B, C, D)
    w = World.open(
        cast, open_store(stores, hub_url), lambda p: (FailingFlush if p == HUB else MemoryTransport)(broker, p)
    )
    x = individual_number()
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    with pytest.raises(BrokerUnavailable):
        w.hub.step(timeout_ms=50)
    assert len(owed(w.hub.store.engine)) == 1 and Topics().inbox(HUB) not in broker.committed
    w.settle()
    assert owed(w.hub.store.engine) == []
    [routed] = w.inbox(A)
    assert isinstance(routed.message, RoutedQuery) and routed.message.code == ""  # A never registered X
    assert w.inbox(A) == []


def wait_for(w: World, name: str, seconds: float = 10) -> list[Inbound]:
    deadline, got = time.monotonic() + seconds, []
    while not got and time.monotonic() < deadline:
        got = w.inbox(name, timeout_ms=50)
    return got


def test_two_running_hubs_one_leads_and_the_other_takes_over(hub_url: str, stores: list[HubStore]) -> None:
    """An administrator running active/standby: both loops run; one handles; when it stops, the other does."""
    broker, cast = MemoryBroker(), Cast.of(A, B, C, D)
    first = World.open(cast, open_store(stores, hub_url, "hub-1"), lambda p: MemoryTransport(broker, p))
    second = World.open(cast, open_store(stores, hub_url, "hub-2"), lambda p: MemoryTransport(broker, p))
    assert first.hub.lead()
    stops = [threading.Event(), threading.Event()]
    loops = [
        threading.Thread(target=w.hub.run, args=(stop,), kwargs={"standby_wait": 0.05})
        for w, stop in zip((first, second), stops, strict=True)
    ]
    for loop in loops:
        loop.start()
    try:
        x = individual_number()
        first.agencies[A].file_person(x)
        mine = first.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
        [routed] = wait_for(first, A)
        assert isinstance(routed.message, RoutedQuery) and not second.hub.store.sequencer.leader
        stops[0].set()
        loops[0].join(10)
        first.hub.store.sequencer.release()  # the leader stops and lets go
        first.agencies[A].answer(routed.message.request_id, "answered", "data")
        [answer] = wait_for(first, C)
        assert answer.message == AnswerMessage(mine, "answered", "data")
        assert second.hub.store.sequencer.leader  # the standby took over and relayed it
    finally:
        for stop in stops:
            stop.set()
        for loop in loops:
            loop.join(10)


def test_a_revoked_key_is_parked(hub_url: str, stores: list[HubStore]) -> None:
    """A peer's stolen key after its revocation: what it signs is parked, never applied."""
    w, _ = world(stores, hub_url)
    b = w.cast.agencies[B]
    w.hub.directory.ring.revoke(b.signer.key_id, START, "stolen")
    w.agencies[B].flag(individual_number(), "NO_AUTO_RESPONSE", "set")
    [step] = w.settle()[:1]
    assert (step.parked, step.applied) == (2, 0)
    assert {p.code for p in parked(w.hub.store.engine)} == {Code.REVOKED_KEY}
    assert count(w.hub.store, hub_codes) == 0 and count(w.hub.store, hub_flag_changes) == 0


def test_a_number_change_carries_the_protection_and_the_translation(hub_url: str, stores: list[HubStore]) -> None:
    """The perpetrator after a number change (re-relocation): B protects X under the old number, C knows X only
    under the new one, A only under the old: the query still reaches A under A's code and is still held."""
    w, _ = world(stores, hub_url)
    old, new, other = individual_number(), individual_number(), individual_number()
    w.agencies[B].flag(old, "NON_DISCLOSURE", "set")
    w.agencies[A].file_person(old)
    w.agencies[B].link(old, new)
    mine = w.agencies[C].query(new, A, PROCEDURE, ITEM, INFO)
    w.settle()
    [routed] = [i.message for i in w.inbox(A)]
    assert isinstance(routed, RoutedQuery)
    assert routed.answer == "staff" and routed.code == w.agencies[A].code(old)
    [consult] = [i.message for i in w.inbox(B)]
    assert isinstance(consult, Consultation) and consult.code == w.agencies[B].code(old)
    w.agencies[B].link(old, new)  # reported again: nothing changes
    w.agencies[B].link(old, other)  # the old number followed twice: refused
    w.settle()
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.LINK_CONFLICT]
    w.agencies[A].answer(routed.request_id, "in_progress")  # a final answer needs four eyes (consultation)
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "in_progress", "")]


def test_the_portal_registers_and_does_nothing_else(hub_url: str, stores: list[HubStore]) -> None:
    """Writer authority on the hop to the hub: the portal (or whoever holds its key) maps its codes, and cannot
    set or release a flag, file a record or ask an agency."""
    w, _ = world(stores, hub_url, Cast.of(A, B, C, D, PORTAL))
    x, portal = individual_number(), w.agencies[PORTAL]
    w.agencies[A].file_person(x)
    portal.flag(x, "NON_DISCLOSURE", "release")
    portal.record(x, C, PROCEDURE, ITEM, INFO, "provided", "2026-01-01T00:00:00Z")
    portal.query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert w.hub.store.codes.person(PORTAL, portal.code(x)) == w.hub.store.codes.person(A, w.agencies[A].code(x))
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.WRONG_AGENCY] * 3
    assert count(w.hub.store, hub_flag_changes) == count(w.hub.store, hub_records) == 0 and w.inbox(A) == []


def test_an_agency_reads_only_the_hubs_messages_and_each_once(hub_url: str, stores: list[HubStore]) -> None:
    """Broker operator or a peer writing into A's inbox directly: a peer's message sealed to A is refused (only
    the hub routes), a re-injected hub message is read once."""
    w, broker = world(stores, hub_url)
    x = individual_number()
    w.agencies[A].file_person(x)
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    a_inbox = Topics().inbox(A)
    [genuine] = broker.topics[a_inbox]
    b, a_key = w.cast.agencies[B], w.cast.directory().sealing_key(A)
    fake = RoutedQuery(uuid.uuid4().hex, C, w.agencies[A].code(x), PROCEDURE, ITEM, INFO, "auto")
    broker.append(a_inbox, seal(b.signer, a_key, A, uuid.uuid4().hex, fake.kind, fake.encode(), ANSWER_SIZE))
    broker.append(a_inbox, genuine)
    [only] = w.inbox(A)
    assert isinstance(only.message, RoutedQuery) and only.message.request_id != fake.request_id
    assert w.agencies[A].refused == [Code.WRONG_ROUTE]  # only the hub routes
    assert w.inbox(A) == []


def test_a_leader_deposed_mid_run_routes_nothing_and_commits_nothing(hub_url: str, stores: list[HubStore]) -> None:
    """An administrator's cut (PostgreSQL session terminated) or an operator deleting a lease file he took for
    stale: the old leader does not notice, takes the next query, and is refused by the fencing — nothing routed,
    nothing committed; the new leader routes it once."""
    broker, cast = MemoryBroker(), Cast.of(A, B, C, D)
    old = World.open(cast, open_store(stores, hub_url, "hub-1"), lambda p: MemoryTransport(broker, p))
    new = World.open(cast, open_store(stores, hub_url, "hub-2"), lambda p: MemoryTransport(broker, p))
    x = individual_number()
    old.agencies[A].file_person(x)
    old.agencies[C].file_person(x)
    assert sum(s.applied for s in old.settle()) == 2
    seq = old.hub.store.sequencer
    if old.hub.store.engine.dialect.name == "postgresql":
        assert seq._conn is not None
        pid = seq._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        seq._conn.commit()
        with new.hub.store.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    else:
        assert seq.lease_file is not None
        seq.lease_file.unlink()
    assert new.hub.store.sequencer.take_lease(wait=10)
    mine = old.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    refused = old.hub.step(timeout_ms=50)
    assert refused.standby and refused.applied == 0
    assert old.inbox(A) == [] and count(new.hub.store, hub_requests) == 0 and owed(new.hub.store.engine) == []
    assert sum(s.applied for s in new.settle()) == 1  # handed over again: the query, once
    [routed] = new.inbox(A)
    assert isinstance(routed.message, RoutedQuery) and routed.message.answer == "auto"
    new.agencies[A].answer(routed.message.request_id, "answered", "d")
    new.settle()
    assert [i.message for i in new.inbox(C)] == [AnswerMessage(mine, "answered", "d")]
