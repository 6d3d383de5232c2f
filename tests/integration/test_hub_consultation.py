"""The consultation beyond delivery, through the hub's loop on the in-memory transport, on SQLite and PostgreSQL:
the holders' advice relayed unnamed, the provider's four-eyes decision checked by the hub, the deadline that
escalates and never answers, a plain answer to a staff request refused, a parked query answered.

Threats, per test: the perpetrator (hoping a request about a protected person is answered automatically), a
peer agency (a provider answering by itself, an agency advising on what it was not consulted on), the
administrator or a shell user at the provider (one person deciding alone, the node's key deciding), the broker
operator (the size of what a querier is sent).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app.credentials import StaffSigner
from ledger.errors import Code, FlagLedgerError, StorageError
from ledger.hub.consultations import WINDOW
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.tables import hub_decisions
from ledger.linkage.agency import Inbound
from ledger.linkage.consultation import AdviceRelay, Escalation, StaffAnswer, StaffDesk, decision_statement
from ledger.linkage.messages import AnswerMessage, QueryMessage, RoutedQuery
from ledger.linkage.names import HUB
from ledger.linkage.sealing import read_header, seal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from ledger.log.staff_roster import RosterState
from tests.support.hub_world import START, A, B, C, Cast, D, World, values
from tests.support.people import individual_number
from tests.support.staff_keys import approval, roster_of, staff_signer

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"


@pytest.fixture
def hub_url(backend: str | None, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend


@pytest.fixture
def stores(hub_url: str) -> Iterator[list[HubStore]]:
    opened: list[HubStore] = []
    yield opened
    for store in opened:
        store.close()


class Clock:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at


STAFF = {n: staff_signer(A, n) for n in ("apr", "apr2")}
ADMIN_KEYS = (staff_signer(A, "admin"), staff_signer(A, "admin"))  # one person, two certified keys


def a_roster() -> RosterState:
    return roster_of(A, *STAFF.values(), *ADMIN_KEYS)


def world(stores: list[HubStore], url: str, clock: Clock | None = None) -> tuple[World, MemoryBroker]:
    broker = MemoryBroker()
    stores.append(store := open_hub_store(url, "hub-1"))
    w = World.open(Cast.of(A, B, C, D), store, lambda p: MemoryTransport(broker, p), clock or Clock(), {A: a_roster()})
    return w, broker


def staff_query(w: World, *holders: str) -> tuple[str, str, str, StaffDesk]:
    """X protected by ``holders``; C asks A. (X's number, C's request id, A's routed id, A's desk.)"""
    x = individual_number()
    for holder in holders:
        w.agencies[holder].flag(x, "NON_DISCLOSURE", "set")
    w.agencies[A].file_person(x)
    mine = w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    desk = StaffDesk(A, a_roster())
    [routed] = [i.message for i in w.inbox(A)]
    assert isinstance(routed, RoutedQuery) and routed.answer == "staff" and desk.take(routed)
    return x, mine, routed.request_id, desk


def file_all(desk: StaffDesk, inbound: list[Inbound]) -> None:
    for i in inbound:
        assert desk.take(i.message)


def decide(desk: StaffDesk, request_id: str, status: str, data: str = "", *signers: StaffSigner) -> StaffAnswer:
    chosen = signers or (STAFF["apr"], STAFF["apr2"])
    statement = desk.statement(request_id, status, data)
    first, second = (approval(s, statement) for s in chosen)
    return desk.decide(request_id, status, data, first, second)


def test_advice_is_relayed_combined_without_naming_any_holder(hub_url: str, stores: list[HubStore]) -> None:
    """Perpetrator and peer agency at the provider: the holders' advice reaches A's staff as one combined word,
    once every holder advised — no holder's name, no count; an agency not consulted cannot advise."""
    w, broker = world(stores, hub_url)
    _, _, request_id, desk = staff_query(w, B, D)
    consulted = {h: w.inbox(h) for h in (B, D)}
    assert all(len(m) == 1 for m in consulted.values())
    w.agencies[B].advise(request_id, "do_not_disclose")
    w.settle()
    assert w.inbox(A) == []  # one holder of two: A hears nothing yet (nor how many are left)
    w.agencies[C].advise(request_id, "may_disclose")  # the querier, never consulted
    w.agencies[B].advise(request_id, "may_disclose")  # B changing its word
    w.settle()
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.NOT_FOUND, Code.CONFLICT]
    w.agencies[D].advise(request_id, "may_disclose")
    w.settle()
    [relay] = w.inbox(A)
    assert relay.message == AdviceRelay(request_id, "do_not_disclose")  # the most restrictive wins
    assert not {B, D} & values(relay.message)
    # on the broker, the relay from the hub is one answer's size, like everything the hub sends an agency
    sizes = {len(m) for m in broker.topics[Topics().inbox(A)]}
    assert len(sizes) == 1
    file_all(desk, [relay])
    assert desk.cases[request_id].basis == ("do_not_disclose", "advised")
    assert w.inbox(C) == []  # advice is no answer


def test_a_decision_needs_two_different_staff_members(hub_url: str, stores: list[HubStore]) -> None:
    """Administrator deciding alone with two of their keys, shell user signing with the node's key: refused at
    the provider's desk and at the hub; two staff members' decision is relayed as a plain answer."""
    w, _ = world(stores, hub_url)
    _, mine, request_id, desk = staff_query(w, B)
    w.inbox(B)
    w.agencies[B].advise(request_id, "do_not_disclose")
    w.settle()
    file_all(desk, w.inbox(A))

    with pytest.raises(FlagLedgerError) as alone:
        decide(desk, request_id, "not_provided", "", *ADMIN_KEYS)
    assert alone.value.code == Code.FOUR_EYES
    # the same decision sent anyway (a provider skipping its own check): the hub refuses it too
    statement = desk.statement(request_id, "not_provided", "")
    one, two = (approval(k, statement) for k in ADMIN_KEYS)
    alone_answer = StaffAnswer(
        request_id,
        "not_provided",
        "",
        "do_not_disclose",
        "advised",
        one.key_id,
        one.signature,
        two.key_id,
        two.signature,
    )
    w.agencies[A].answer_decided(alone_answer)
    # a shell user at A: the node's key is no staff key, however it signs
    node = w.cast.agencies[A].signer
    forged = node._private.sign(statement).hex()
    shell = StaffAnswer(
        request_id,
        "not_provided",
        "",
        "do_not_disclose",
        "advised",
        node.key_id,
        forged,
        STAFF["apr"].key_id,
        approval(STAFF["apr"], statement).signature,
    )
    w.agencies[A].answer_decided(shell)
    w.settle()
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.FOUR_EYES, Code.STAFF_SIGNATURE]
    assert w.inbox(C) == []

    decided = decide(desk, request_id, "not_provided")
    w.agencies[A].answer_decided(decided)
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "not_provided", "")]  # no trace of a decision
    with w.hub.store.engine.connect() as conn:
        [row] = conn.execute(select(hub_decisions)).mappings()
    assert {row["first_key"], row["second_key"]} == {s.key_id for s in STAFF.values()}
    assert row["advice"] == "do_not_disclose" and row["basis"] == "advised"
    w.agencies[A].answer_decided(decided)  # sent again (a new message): decided once
    w.settle()
    assert parked(w.hub.store.engine)[-1].code == Code.CONFLICT and w.inbox(C) == []


def test_no_advice_by_the_deadline_escalates_and_answers_nothing(hub_url: str, stores: list[HubStore]) -> None:
    """Perpetrator: the holder stays silent (or is cut off); nothing is answered automatically, A's staff are
    told to decide, and only their four-eyes decision answers."""
    clock = Clock()
    w, _ = world(stores, hub_url, clock)
    _, mine, request_id, desk = staff_query(w, B)
    with pytest.raises(FlagLedgerError) as early:
        desk.statement(request_id, "answered", "data")
    assert early.value.code == Code.STAFF_DECISION_REQUIRED
    # A's two staff claiming the deadline passed before it did: the hub, not the provider, keeps the deadline
    statement = decision_statement(A, request_id, "answered", "data", "none", "escalated")
    lying = StaffAnswer(
        request_id,
        "answered",
        "data",
        "none",
        "escalated",
        STAFF["apr"].key_id,
        approval(STAFF["apr"], statement).signature,
        STAFF["apr2"].key_id,
        approval(STAFF["apr2"], statement).signature,
    )
    w.agencies[A].answer_decided(lying)
    clock.at = START + WINDOW - timedelta(seconds=1)
    w.settle()
    assert w.inbox(A) == [] and w.inbox(C) == []
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.STAFF_DECISION_REQUIRED]

    clock.at = START + WINDOW
    w.settle()
    [raised] = w.inbox(A)
    assert raised.message == Escalation(request_id, "no_advice", "none")
    assert w.inbox(C) == []  # never answered automatically
    clock.at += timedelta(days=30)
    w.settle()
    assert w.inbox(A) == [] and w.inbox(C) == []  # raised once
    file_all(desk, [raised])
    assert [c.routed.request_id for c in desk.escalated()] == [request_id]
    # A's staff decide now, on no advice, with four eyes
    w.agencies[A].answer_decided(decide(desk, request_id, "answered", "課税所得 0"))
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "answered", "課税所得 0")]
    assert desk.escalated() == []


def test_a_plain_answer_to_a_staff_request_is_refused_and_raised(hub_url: str, stores: list[HubStore]) -> None:
    """Peer agency (a provider whose request path answers by itself): the hub parks a final answer to a request
    it marked staff, tells the provider's staff, relays nothing; 'in progress' still goes through."""
    w, broker = world(stores, hub_url)
    _, mine, request_id, desk = staff_query(w, B)
    for status in ("answered", "not_provided"):
        w.agencies[A].answer(request_id, status, "課税所得 0" if status == "answered" else "")
    w.settle()
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.STAFF_DECISION_REQUIRED] * 2
    assert w.inbox(C) == []
    [raised] = w.inbox(A)  # raised once, however many were refused
    assert raised.message == Escalation(request_id, "answer_refused", "none")
    file_all(desk, [raised])
    assert desk.escalated() and desk.cases[request_id].basis is None  # raised, still nothing to decide on
    # the broker operator re-injects the refused answer: parked again, raised no more
    hub_topic = broker.topics[Topics().inbox(HUB)]
    broker.append(Topics().inbox(HUB), hub_topic[-1])
    w.settle()
    assert len(parked(w.hub.store.engine)) == 3 and w.inbox(A) == []
    w.agencies[A].answer(request_id, "in_progress")
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "in_progress", "")]


def test_a_parked_query_gets_a_not_routed_answer_of_an_answers_size(hub_url: str, stores: list[HubStore]) -> None:
    """Broker operator: a query the hub parks is answered 'not routed', sealed at the size of every other answer;
    the querier is not left waiting, and a replay is answered once."""
    w, broker = world(stores, hub_url)
    x = individual_number()
    w.agencies[A].file_person(x)
    ok = w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    [routed] = w.inbox(A)
    assert isinstance(routed.message, RoutedQuery)
    w.agencies[A].answer(routed.message.request_id, "answered", "課税所得 0")
    w.settle()
    to_unknown = w.agencies[C].query(x, "999999", PROCEDURE, ITEM, INFO)  # no agency the hub can seal to
    c_keys, hub_key = w.cast.agencies[C], w.cast.directory().sealing_key(HUB)
    never_filed = uuid.uuid4().hex
    payload = QueryMessage(never_filed, "a" + uuid.uuid4().hex, A, PROCEDURE, ITEM, INFO).encode()
    sealed = seal(c_keys.signer, hub_key, HUB, uuid.uuid4().hex, "query", payload)
    broker.append(Topics().inbox(HUB), sealed)
    broker.append(Topics().inbox(HUB), sealed)  # the operator re-injects it
    w.settle()
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.UNKNOWN_AGENCY, Code.NOT_FOUND]
    got = w.inbox(C)
    assert [i.message for i in got] == [
        AnswerMessage(ok, "answered", "課税所得 0"),
        AnswerMessage(to_unknown, "not_routed", ""),
        AnswerMessage(never_filed, "not_routed", ""),
    ]
    records = broker.topics[Topics().inbox(C)]
    assert len(records) == 3 and len({len(m) for m in records}) == 1  # one size: the operator cannot tell
    assert all(read_header(m).sender == HUB for m in records)
    assert w.inbox(A) == []  # nothing reached a provider
    assert not any(x in values(i.message) for i in got)


def test_a_poll_rolled_back_and_applied_again_counts_its_unrouted_query_once(
    hub_url: str, stores: list[HubStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Administrator reading the hub's metrics (and the broker operator whose outage rolls a poll back): a query
    the hub answers ``not_routed`` in a poll that then fails (the database away after it: ``StorageError`` at the
    poll's ``hub.poll.applied`` seam) is handed over again and answered then — the ``unrouted`` count says one,
    as the querier's inbox does (counted before the commit it said two: an alarm on it would cry wolf, or hide a
    real rise among replays)."""
    w, broker = world(stores, hub_url)
    x = individual_number()
    c_keys, hub_key = w.cast.agencies[C], w.cast.directory().sealing_key(HUB)
    never_filed = uuid.uuid4().hex
    payload = QueryMessage(never_filed, "a" + uuid.uuid4().hex, A, PROCEDURE, ITEM, INFO).encode()
    broker.append(Topics().inbox(HUB), seal(c_keys.signer, hub_key, HUB, uuid.uuid4().hex, "query", payload))
    w.agencies[A].file_person(x)  # applied after it in the same poll: the seam below fails the poll there
    failed: list[str] = []

    def once(name: str) -> None:
        if name == "hub.poll.applied" and not failed:
            failed.append(name)
            raise StorageError("the database went away mid-poll")

    monkeypatch.setattr("ledger.hub.poll.faultpoint", once)
    with pytest.raises(StorageError):
        w.hub.step(timeout_ms=50)
    assert failed and w.hub.unrouted == 0  # nothing committed, nothing counted
    w.settle()
    assert w.hub.unrouted == 1
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(never_filed, "not_routed", "")]
    assert [p.code for p in parked(w.hub.store.engine)] == [Code.NOT_FOUND]
