"""One poll of the hub's inbox applied in one transaction (issues #19, #23; ``ledger.hub.poll``), on SQLite and
PostgreSQL: a poll mixing good messages, a replay and poison files what one-by-one application files, with the
same numbers; a crash in the middle of the poll leaves nothing of it, and the poll handed over again is
applied once.

Threats, per test: the broker operator (re-injecting a message, putting junk on the hub's topic), a peer agency
(a flag change about a person it never registered), and an administrator or a failing machine (the hub's
process killed mid-poll). None may cost a message, file one twice, or leave a gap in the hub's sequence the
portal's hiding is decided by.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from ledger.errors import Code, InputError, StorageError
from ledger.faultpoint import ENV
from ledger.hub.inbox import mark_applied, parked, was_applied
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.service import HubService
from ledger.hub.tables import (
    hub_applied,
    hub_codes,
    hub_flag_changes,
    hub_outbox,
    hub_parked,
    hub_requests,
    hub_sealed_records,
)
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.messages import FlagChangeMessage, decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.record_contents import SealedRecordMessage
from ledger.linkage.sealing import read_header, unseal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from tests.support.hub_world import START, A, B, C, Cast, World
from tests.support.people import individual_number
from tests.support.postgres import temp_database

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
AT = "2026-01-01T09:00:00+09:00"
INBOX = Topics().inbox(HUB)


@pytest.fixture
def hub_url(backend: str | None, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend


@pytest.fixture
def stores() -> Iterator[list[HubStore]]:
    opened: list[HubStore] = []
    yield opened
    for store in opened:
        store.close()


def count(store: HubStore, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def applied(store: HubStore) -> dict[tuple[str, str], int]:
    a = hub_applied.c
    with store.engine.connect() as conn:
        return {(str(s), str(e)): int(q) for s, e, q in conn.execute(select(a.sender, a.event_id, a.seq))}


def agencies(cast: Cast, broker: MemoryBroker) -> dict[str, AgencyEnd]:
    directory = cast.directory()
    return {n: AgencyEnd(k, MemoryTransport(broker, n), directory, lambda: START) for n, k in cast.agencies.items()}


def mixed_poll(
    ends: dict[str, AgencyEnd], broker: MemoryBroker
) -> tuple[list[tuple[str, str]], tuple[str, str], tuple[str, str]]:
    """Put on the hub's topic: good messages of four kinds, a replay of one of them, junk, and a flag change
    about a person its sender never registered. Returns the good messages' (sender, event id) in topic order,
    the replayed one's and the unregistered flag change's."""
    x = individual_number()
    ends[A].file_person(x)
    ends[B].flag(x, "NON_DISCLOSURE", "set")  # B's registration, then its flag change
    flag_message = broker.topics[INBOX][-1]
    ends[A].record(x, C, PROCEDURE, ITEM, INFO, "provided", AT)
    broker.append(INBOX, flag_message)  # the broker operator re-injects the flag change, in the same poll
    broker.append(INBOX, b"junk")
    stranger = FlagChangeMessage(uuid.uuid4().hex, ends[C].code(individual_number()), "NON_DISCLOSURE", "set")
    ends[C].send(stranger)  # C never registered that person: not found, parked
    poison = broker.topics[INBOX][-1]
    ends[A].record(x, C, PROCEDURE, ITEM, INFO, "held", AT)
    ends[C].query(x, A, PROCEDURE, ITEM, INFO)  # C's registration, then a query held for staff (B's flag)
    ends[PORTAL].file_person(x)
    headers = [read_header(m) for m in broker.topics[INBOX] if m != b"junk"]
    keys = [(h.sender, h.event_id) for h in headers]
    replay, stranger_key = keys[4], keys[5]
    assert keys[2] == replay and read_header(poison).event_id == stranger_key[1]
    good = [k for i, k in enumerate(keys) if i not in (4, 5)]
    return good, replay, stranger_key


def test_a_mixed_poll_files_the_good_in_order_parks_the_poison_and_applies_the_replay_once(
    hub_url: str, stores: list[HubStore]
) -> None:
    """Broker operator (a re-injected flag change, junk) and a peer agency (a flag change about a person it
    never registered) in one poll with good messages: the good ones take consecutive numbers in topic order —
    exactly those a hub taking one message per transaction gives them — the poison is parked with its
    reason, the replay is dropped, and the inbox is committed past all of it."""
    broker = MemoryBroker()
    cast = Cast.of(A, B, C, PORTAL)
    stores.append(store := open_hub_store(hub_url, "hub-1"))
    w = World.open(cast, store, lambda p: MemoryTransport(broker, p))
    good, replay, stranger = mixed_poll(w.agencies, broker)

    step = w.hub.step(timeout_ms=50)  # the whole topic in one poll
    assert (step.applied, step.replays, step.parked) == (len(good), 1, 2)
    numbers = applied(store)
    assert [numbers[k] for k in good] == list(range(1, len(good) + 1))  # topic order, no gap
    assert store.sequencer.last() == len(good) and stranger not in numbers
    assert [(p.code, p.event_id) for p in parked(store.engine)] == [
        (Code.MALFORMED, None),
        (Code.NOT_FOUND, stranger[1]),
    ]
    assert count(store, hub_flag_changes) == 1 and count(store, hub_sealed_records) == 2
    assert count(store, hub_requests) == 1 and broker.committed[INBOX] == len(broker.topics[INBOX])
    assert numbers[replay] == 3  # the flag change, filed once under its first number

    # one message per poll, so one transaction per message, on a second hub database: the same numbers
    with _other_database(hub_url) as url:
        one_by_one = MemoryBroker()
        for message in broker.topics[INBOX]:
            one_by_one.append(INBOX, message)
        stores.append(alone := open_hub_store(url, "hub-alone"))
        hub = HubService(alone, MemoryTransport(one_by_one, HUB), cast.hub, cast.directory(), lambda: START)
        for _ in range(one_by_one.size(INBOX)):
            hub.step(timeout_ms=10, max_records=1)
        assert one_by_one.committed[INBOX] == one_by_one.size(INBOX)
        assert applied(alone) == numbers
        assert [(p.code, p.event_id) for p in parked(alone.engine)] == [
            (p.code, p.event_id) for p in parked(store.engine)
        ]
        r = hub_requests.c
        with store.engine.connect() as a, alone.engine.connect() as b:
            shape = select(r.seq, r.querier, r.provider, r.person, r.staff)
            assert a.execute(shape).all() == b.execute(shape).all()


class _other_database:
    """A second, empty hub database of the same backend as ``hub_url``."""

    def __init__(self, hub_url: str) -> None:
        self.hub_url = hub_url
        self._pg = temp_database() if hub_url.startswith("postgres") else None

    def __enter__(self) -> str:
        if self._pg is not None:
            return self._pg.__enter__()
        return self.hub_url.replace("hub.sqlite", "hub-alone.sqlite")

    def __exit__(self, *exc: object) -> None:
        if self._pg is not None:
            self._pg.__exit__(None, None, None)


def test_a_hub_killed_mid_poll_keeps_nothing_of_it_and_the_redelivery_applies_it_once(
    hub_url: str, stores: list[HubStore]
) -> None:
    """An administrator's kill -9 or a failing machine: the hub's process is SIGKILLed at the fault point
    ``hub.poll.applied`` with its third message applied (and a poison message parked) inside the poll's open
    transaction. Nothing of the poll is in the database — no number, code, flag, record, applied id, park or
    owed message — and the next hub, handed the poll again, applies every message once and parks the poison
    once, with the numbers one-by-one application gives."""
    broker = MemoryBroker()
    cast = Cast.of(A, B, C, PORTAL)
    open_hub_store(hub_url, "migrate").close()  # the schema, before the fork: the child opens its own engine
    good, replay, stranger = mixed_poll(agencies(cast, broker), broker)

    pid = os.fork()
    if pid == 0:  # the hub that dies: its own engine and lease, the fault point armed
        try:
            os.environ[ENV] = "hub.poll.applied:3"
            store = open_hub_store(hub_url, "hub-dying")
            HubService(store, MemoryTransport(broker, HUB), cast.hub, cast.directory(), lambda: START).step(50)
        finally:
            os._exit(3)  # reached only if the fault point did not kill it
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    stores.append(store := open_hub_store(hub_url, "hub-2"))
    store.sequencer.take_lease(wait=30)  # PostgreSQL drops the dead session's lock when it notices it gone
    assert store.sequencer.last() == 0
    for table in (hub_applied, hub_codes, hub_flag_changes, hub_sealed_records, hub_requests, hub_parked, hub_outbox):
        assert count(store, table) == 0, table.name
    assert broker.committed.get(INBOX, 0) == 0

    hub = HubService(store, MemoryTransport(broker, HUB), cast.hub, cast.directory(), lambda: START)
    step = hub.step(timeout_ms=50)
    assert (step.applied, step.replays, step.parked) == (len(good), 1, 2)
    numbers = applied(store)
    assert [numbers[k] for k in good] == list(range(1, len(good) + 1)) and stranger not in numbers
    assert numbers[replay] == 3 and count(store, hub_flag_changes) == 1 and count(store, hub_sealed_records) == 2
    assert count(store, hub_requests) == 1 and count(store, hub_parked) == 2
    assert (
        broker.size(Topics().inbox(A)) == 1
    )  # the query routed to A once (the registrations owe nothing without a flag map)

    broker.committed[INBOX] = 0  # and a lost commit of the inbox: everything handed over again
    again = HubService(store, MemoryTransport(broker, HUB), cast.hub, cast.directory(), lambda: START)
    step = again.step(timeout_ms=50)
    assert (step.applied, step.replays) == (0, len(good) + 1) and step.parked == 2  # parked again, not lost
    assert applied(store) == numbers and store.sequencer.last() == len(good)
    assert broker.size(Topics().inbox(A)) == 1


def test_an_append_refused_half_way_through_a_poll_takes_no_number_and_leaves_no_row(
    hub_url: str, stores: list[HubStore]
) -> None:
    """A peer agency's message refused after its write began (as a staff answer is checked inside its write):
    rolled back to its savepoint, it leaves no row and takes no number — the portal's hiding is decided by
    the numbers, so a gap or a number taken twice would shift it — and the poll's other appends commit."""
    stores.append(store := open_hub_store(hub_url, "hub-1"))
    store.sequencer.take_lease()

    def refused(conn: Connection, seq: int) -> None:
        mark_applied(conn, A, "e2", seq)
        raise InputError("refused after its write began")

    with store.sequencer.poll():
        first = store.sequencer.append(lambda conn: None, lambda conn, seq: mark_applied(conn, A, "e1", seq))
        with pytest.raises(InputError):
            store.sequencer.append(lambda conn: None, refused)
        assert not was_applied(store.engine, A, "e2") and was_applied(store.engine, A, "e1")
        third = store.sequencer.append(lambda conn: None, lambda conn, seq: mark_applied(conn, A, "e3", seq))
        assert store.sequencer.last() == 0  # another connection sees nothing before the commit
    assert (first, third) == (1, 2) and store.sequencer.last() == 2
    assert applied(store) == {(A, "e1"): 1, (A, "e3"): 2}


def test_a_sealed_record_sent_again_under_new_event_ids_is_filed_once_in_the_poll_and_after_it(
    hub_url: str, stores: list[HubStore]
) -> None:
    """A provider that died between sending a record and recording it sent, or the broker operator replaying
    it re-sealed under a fresh event id: the record id is filed once whether the copy comes in the same poll
    (its row not yet inserted: the record-id check is answered from the poll) or in a later one (answered by
    the poll's one query) — a record filed twice would show the portal two provisions that happened once."""
    broker = MemoryBroker()
    cast = Cast.of(A, B, C, PORTAL)
    stores.append(store := open_hub_store(hub_url, "hub-1"))
    w = World.open(cast, store, lambda p: MemoryTransport(broker, p))
    ends = w.agencies
    x = individual_number()
    record_id = ends[A].record(x, C, PROCEDURE, ITEM, INFO, "provided", AT)
    original = unseal(cast.hub.sealing, HUB, broker.topics[INBOX][-1], cast.directory().sender_keys(START))
    copy = decode(SealedRecordMessage, original.payload)
    assert copy.record_id == record_id
    ends[A].send(copy)  # the same record under a fresh event id, in the same poll
    ends[A].record(x, C, PROCEDURE, ITEM, INFO, "held", AT)

    step = w.hub.step(timeout_ms=50)
    assert (step.applied, step.parked) == (4, 0)  # the registration, the record, its copy, the second record
    r = hub_sealed_records.c
    with store.engine.connect() as conn:
        filed = conn.execute(select(r.record_id, r.seq).order_by(r.seq)).all()
    assert len(filed) == 2 and filed[0] == (record_id, 2)
    assert store.sequencer.last() == 3  # the copy took no number: no gap before the second record

    ends[A].send(copy)  # and again, in a later poll
    step = w.hub.step(timeout_ms=50)
    assert (step.applied, step.parked) == (1, 0)
    assert count(store, hub_sealed_records) == 2 and store.sequencer.last() == 3


def test_a_held_append_refused_drops_what_it_held_and_one_that_wrote_itself_stops_the_poll(
    hub_url: str, stores: list[HubStore]
) -> None:
    """A peer agency's message refused inside an append taken without a SAVEPOINT (``held``: a sealed record's):
    what it held for the commit is dropped and it takes no number. Were such an append to write on the poll's
    connection itself and then fail (a bug), no savepoint could undo it: the poll stops and commits nothing —
    never half a message, which would shift the numbers the portal's hiding is decided by."""
    stores.append(store := open_hub_store(hub_url, "hub-1"))
    store.sequencer.take_lease()

    def refused(conn: Connection, seq: int) -> None:
        mark_applied(conn, A, "e2", seq)  # held for the commit
        raise InputError("refused after its write began")

    with store.sequencer.poll():
        store.sequencer.append(lambda conn: None, lambda conn, seq: mark_applied(conn, A, "e1", seq), held=True)
        with pytest.raises(InputError):
            store.sequencer.append(lambda conn: None, refused, held=True)
        assert not was_applied(store.engine, A, "e2")
        third = store.sequencer.append(lambda conn: None, lambda conn, seq: mark_applied(conn, A, "e3", seq), held=True)
    assert third == 2 and applied(store) == {(A, "e1"): 1, (A, "e3"): 2}

    def wrote_itself(conn: Connection, seq: int) -> None:
        conn.execute(hub_applied.insert().values(sender=A, event_id="e4", seq=seq))  # not held: written now
        raise InputError("refused after it wrote")

    with pytest.raises(StorageError), store.sequencer.poll():
        store.sequencer.append(lambda conn: None, lambda conn, seq: mark_applied(conn, A, "e5", seq), held=True)
        store.sequencer.append(lambda conn: None, wrote_itself, held=True)
    assert applied(store) == {(A, "e1"): 1, (A, "e3"): 2} and store.sequencer.last() == 2
