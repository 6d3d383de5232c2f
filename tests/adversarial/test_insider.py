"""The insider at a non-holding agency (issue 19's insider test, its start): an agency with its own keys and its
whole inbox cannot learn who protects X.

Threat: an insider with one agency's whole data and secrets (here: the provider A and the querier C, each with
every key it holds), and the perpetrator behind C's counter. Two histories differ only in who holds X's
protection (B or D, with the same flags); everything else — keys, numbers, messages sent — is the same. For each
non-holder, everything its inbox topic carries, opened with every key it holds, is compared as structured
contents after normalising the random ids: equal. The holder's own inbox differs (it is consulted), which shows
the comparison can tell histories apart.

The broker operator (issue 20, last test): on digest schedules both ways, the trace of every topic — per tick,
which topic, the header's sender and recipient, sizes, counts — is equal for two histories that differ only in
who holds X, with a holder and non-holders in each; sent as decided, it differs.

Not claimed yet: the issue's 10,000-history run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.errors import FlagLedgerError
from ledger.hub.digests import DigestSchedule
from ledger.hub.log import open_hub_store
from ledger.linkage.agency import Inbound, open_from_hub
from ledger.linkage.messages import AnswerMessage, Consultation, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import read_header
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from tests.support.hub_world import A, B, C, Cast, D, World, normalised
from tests.support.people import individual_number

E = "131059"  # another holder, of another person
FLAG_SETS = [("NON_DISCLOSURE",), ("NO_AUTO_RESPONSE",), ("NON_DISCLOSURE", "NO_AUTO_RESPONSE")]


@dataclass
class History:
    world: World
    broker: MemoryBroker
    querier_request: str  # C's own request id: random, normalised away


def history(tmp: Path, cast: Cast, x: str, holder: str, flags: tuple[str, ...]) -> History:
    """B and D both know X; ``holder`` protects X; C asks A about X; A's staff say "in progress"; A records."""
    broker = MemoryBroker()
    store = open_hub_store(f"sqlite:///{tmp / f'hub-{holder}.sqlite'}", "hub")
    w = World.open(cast, store, lambda p: MemoryTransport(broker, p))
    for name in (B, D, A):
        w.agencies[name].file_person(x)
    for flag in flags:
        w.agencies[holder].flag(x, flag, "set")
    mine = w.agencies[C].query(x, A, "児童手当", 74, "地方税関係情報")
    w.settle()
    for inbound in w.inbox(A):
        assert isinstance(inbound.message, RoutedQuery)
        w.agencies[A].answer(inbound.message.request_id, "in_progress")
        w.agencies[A].record(x, C, "児童手当", 74, "地方税関係情報", "held", "2026-01-01T09:00:00+09:00")
    w.settle()
    return History(w, broker, mine)


def insider_view(h: History, name: str) -> list[Inbound]:
    """Everything any topic carried that opens with the keys ``name`` holds (only its own inbox's does)."""
    keys, end = h.world.cast.agencies[name], h.world.agencies[name]
    opened = []
    for topic, messages in h.broker.topics.items():
        for m in messages:
            try:
                opened.append(open_from_hub(keys, m, end.directory.sender_keys(end.now())))
            except FlagLedgerError:
                assert topic != Topics().inbox(name)
                continue
            assert topic == Topics().inbox(name)
    return opened


@pytest.mark.parametrize("flags", FLAG_SETS, ids=["+".join(f) for f in FLAG_SETS])
def test_a_non_holder_learns_nothing_of_who_holds_x(tmp_path: Path, flags: tuple[str, ...]) -> None:
    cast = Cast.of(A, B, C, D, PORTAL)  # records are sealed to the portal
    x = individual_number(random.Random(len(flags)))
    hb, hd = history(tmp_path, cast, x, B, flags), history(tmp_path, cast, x, D, flags)
    try:
        for name in (A, C):  # the provider and the querier: neither holds X's protection
            at_b, at_d = insider_view(hb, name), insider_view(hd, name)
            assert at_b, f"{name}'s inbox is empty: nothing compared"
            ids_b, ids_d = ([hb.querier_request], [hd.querier_request]) if name == C else ([], [])
            assert normalised(at_b, *ids_b) == normalised(at_d, *ids_d)
            inbox = Topics().inbox(name)
            assert [len(m) for m in hb.broker.topics[inbox]] == [len(m) for m in hd.broker.topics[inbox]]
        hub = Topics().inbox(HUB)  # what peers send the hub: as many messages, of the same sizes
        assert [len(m) for m in hb.broker.topics[hub]] == [len(m) for m in hd.broker.topics[hub]]
        # the provider was told "staff" in both, naming no holder; each holder was consulted: the histories
        # differ where they should, so the comparison above could have failed
        routed = [i.message for i in insider_view(hb, A) if isinstance(i.message, RoutedQuery)]
        assert [r.answer for r in routed] == ["staff"]
        assert len(insider_view(hb, B)) == 1 and insider_view(hb, D) == []
        assert len(insider_view(hd, D)) == 1 and insider_view(hd, B) == []
    finally:
        for h in (hb, hd):
            h.world.hub.store.close()


# -- the broker operator: traffic on a digest schedule (issue 20, "no traffic tells") ---------------------------

Trace = list[list[tuple[str, str, int]]]  # per tick: (topic, who the header says sends to whom, size), in order


@dataclass
class Traced:
    trace: Trace
    world: World
    got: dict[str, list[Inbound]]  # what each agency's end opened, over the whole history


def traced_history(tmp: Path, cast: Cast, x: str, y: str, holder: str, digests: bool) -> Traced:
    """B and D know X, E knows Y; ``holder`` protects X, E protects Y (a holder in either history); C asks A
    about X and about Y; A's staff answer "in progress" and record both. The hub ticks after each phase."""
    broker = MemoryBroker()
    store = open_hub_store(f"sqlite:///{tmp / f'traced-{holder}-{digests}.sqlite'}", "hub")
    w = World.open(cast, store, lambda p: MemoryTransport(broker, p))
    if digests:  # both ways: the hub to every inbox, every agency to the hub; ticks driven below, never a clock
        w.hub.digests = DigestSchedule(every=1.0)
        for end in w.agencies.values():
            end.schedule()
    seen: dict[str, int] = {}
    trace: Trace = []
    got: dict[str, list[Inbound]] = {name: [] for name in w.agencies}

    def tick() -> list[Inbound]:
        for name in sorted(w.agencies):
            w.agencies[name].tick()
        w.settle()
        w.hub.tick()
        new = []
        for topic in sorted(broker.topics):
            for m in broker.topics[topic][seen.get(topic, 0) :]:
                header = read_header(m)
                new.append((topic, f"{header.sender}->{header.recipient}", len(m)))
            seen[topic] = len(broker.topics[topic])
        trace.append(new)
        for name in sorted(w.agencies):
            got[name] += w.inbox(name, timeout_ms=0)
        return got[A][-2:]  # what the provider was just routed (two queries)

    for name in (B, D, A):
        w.agencies[name].file_person(x)
    for name in (E, A):
        w.agencies[name].file_person(y)
    tick()
    for flag in ("NON_DISCLOSURE", "NO_AUTO_RESPONSE"):
        w.agencies[holder].flag(x, flag, "set")
    w.agencies[E].flag(y, "NO_AUTO_RESPONSE", "set")
    tick()
    w.agencies[C].query(x, A, "児童手当", 74, "地方税関係情報")
    w.agencies[C].query(y, A, "児童手当", 74, "地方税関係情報")
    for inbound in tick():
        if isinstance(inbound.message, RoutedQuery):
            w.agencies[A].answer(inbound.message.request_id, "in_progress")
    for number in (x, y):
        w.agencies[A].record(number, C, "児童手当", 74, "地方税関係情報", "held", "2026-01-01T09:00:00+09:00")
    tick()
    tick()
    return Traced(trace, w, got)


def test_the_broker_operator_sees_the_same_traffic_whoever_holds(tmp_path: Path) -> None:
    """Threat: the broker operator, reading every topic's traffic — which topic, the headers' sender and
    recipient, sizes, counts, per tick — to learn who protects X (a consultation landing in B's inbox right
    after a query about X; B sending the hub a message when it sets the flag). On a digest schedule both ways
    the traces of two histories that differ only in who holds X (B or D; E holds Y in both, so holders and
    non-holders share each history) are equal, the hub's topic included; sent as decided, the two differ."""
    cast = Cast.of(A, B, C, D, E, PORTAL)  # the portal's inbox gets its digest too
    x, y = individual_number(random.Random(20)), individual_number(random.Random(21))
    worlds = []
    try:
        traced = {}
        for holder in (B, D):
            traced[holder] = traced_history(tmp_path, cast, x, y, holder, digests=True)
            worlds.append(traced[holder].world)
        assert traced[B].trace == traced[D].trace
        for tick in traced[B].trace:  # every tick: one digest to each inbox, one from each agency; one size
            inboxes = [(topic, size) for topic, who, size in tick if topic != Topics().inbox(HUB)]
            assert sorted(t for t, _ in inboxes) == sorted(Topics().inbox(n) for n in (A, B, C, D, E, PORTAL))
            assert len({size for _, size in inboxes}) == 1
            to_hub = [(who, size) for topic, who, size in tick if topic == Topics().inbox(HUB)]
            assert sorted(who for who, _ in to_hub) == [f"{n}->{HUB}" for n in sorted((A, B, C, D, E, PORTAL))]
            assert len({size for _, size in to_hub}) == 1
        # the digests carried the real traffic: in B's history B was consulted about X and D was not
        for holder, other in ((B, D), (D, B)):
            got = traced[holder].got
            assert [type(i.message) for i in got[holder]] == [type(i.message) for i in got[E]] == [Consultation]
            assert got[other] == []
        assert [i.message.answer for i in traced[B].got[A] if isinstance(i.message, RoutedQuery)] == ["staff"] * 2
        assert [i.message.status for i in traced[B].got[C] if isinstance(i.message, AnswerMessage)] == [
            "in_progress"
        ] * 2

        plain = {}
        for holder in (B, D):
            plain[holder] = traced_history(tmp_path, cast, x, y, holder, digests=False)
            worlds.append(plain[holder].world)
        assert plain[B].trace != plain[D].trace  # the comparison can fail: sent as decided, the holder's inbox tells
    finally:
        for w in worlds:
            w.hub.store.close()
