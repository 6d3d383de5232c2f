"""A malicious hub, run by the real hub loop over the real database and transport, against the agencies that
check it (issue #20, docs/accountable-hub.md), on SQLite and PostgreSQL.

Threat: the hub insider — whoever runs the hub signs what it likes: it drops a holder's flag from its map,
routes an automatic answer past a flag, serves a stale map, rewrites its log, or shows one party another head
than the one it announced. Also a peer agency (as provider) relying on the hub's word, and the broker operator
replaying an old routing decision. Each malicious hub is a small subclass of the real ``MapHeads``
(tests/support/map_hub.py); each lie is detected by a provider, a holder or a witness, and raised: an incident
value with evidence a third party checks again with the hub's public key alone, or, where nothing proves the
hub lied, a refusal — and in every case the provider answers by staff, never automatically.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from ledger.errors import Code
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.service import HubService
from ledger.linkage.checks import MapChecks
from ledger.linkage.map_messages import MAX_HOLDINGS
from ledger.linkage.messages import Consultation, RoutedQuery
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.linkage.witness import check_evidence
from ledger.log.signing import Signer
from ledger.runtime.map_keep import SqlMapKeep
from ledger.runtime.migrations import upgrade
from tests.support.hub_world import A, B, C, Cast, World
from tests.support.map_hub import (
    BentKeyHeads,
    Clock,
    DroppingHeads,
    IgnoringHeads,
    RewritingHeads,
    SplitHeads,
    StaleHeads,
    StoryHeads,
    TwoFacedHeads,
    checks,
    open_map_world,
)
from tests.support.people import individual_number
from tests.support.roster_world import hub_store

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
ND, NA = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


@pytest.fixture
def store(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    with hub_store(backend, tmp_path) as opened:
        yield opened


def world(store: HubStore, heads: type = DroppingHeads, **kw: object) -> tuple[World, MemoryBroker]:
    broker = MemoryBroker()
    w = open_map_world(Cast.of(A, B, C), store, lambda p: MemoryTransport(broker, p), heads, **kw)  # type: ignore[arg-type]
    return w, broker


def read_all(w: World) -> dict[str, list[object]]:
    return {name: [i.message for i in w.inbox(name)] for name in w.agencies}


def protect_and_ask(w: World, x: str) -> dict[str, list[object]]:
    """B protects X; A registers X (it holds X's data); then C asks A about X through the hub."""
    w.agencies[B].flag(x, NA, "set")
    w.agencies[A].file_person(x)
    w.settle()
    read_all(w)  # keys, acknowledgements and the head that shows the flag
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    return read_all(w)


def routed(messages: list[object]) -> RoutedQuery:
    [found] = [m for m in messages if isinstance(m, RoutedQuery)]
    return found


def test_an_honest_hub_passes_every_check_and_routes_by_its_map(store: HubStore) -> None:
    """Peer agency as provider and holder: an honest hub's decisions verify — staff for the protected person,
    auto for another — and the holder finds its flag under each head; nobody raises anything."""
    w, _ = world(store, DroppingHeads)  # no victim: honest
    x, y = individual_number(), individual_number()
    w.agencies[A].file_person(y)
    got = protect_and_ask(w, x)
    assert routed(got[A]).answer == "staff"
    assert any(isinstance(m, Consultation) for m in got[B])
    w.agencies[C].query(y, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert routed(read_all(w)[A]).answer == "auto"
    for name in (A, B, C):
        assert checks(w, name).incidents == [] and checks(w, name).refusals == []
    assert checks(w, B).checked >= 1  # its flag checked under the head after it was filed
    assert set(checks(w, A).keys) == {w.agencies[A].code(x), w.agencies[A].code(y)}


def test_a_hub_that_drops_a_flag_from_the_providers_view_is_caught_by_the_holder(store: HubStore) -> None:
    """Hub insider: B's flag is filed and logged but cleared from the person's leaf providers are shown. The
    holder B catches it under the next head, with evidence a third party re-checks."""
    DroppingHeads.victim = B
    try:
        w, _ = world(store, DroppingHeads)
        x = individual_number()
        protect_and_ask(w, x)
    finally:
        DroppingHeads.victim = ""
    [incident, *_] = checks(w, B).incidents
    assert incident.code == Code.FLAG_DROPPED and incident.evidence is not None
    assert check_evidence(incident.evidence, w.cast.hub.signer.public_key)
    assert len(incident.digest) == 64


def test_a_hub_that_drops_a_flag_altogether_is_refused_by_the_holder(store: HubStore) -> None:
    """Hub insider: the flag is gone from the map and the holder is sent no proof for it: no signed leaf proves
    the drop, so it is a refusal (flag_dropped) under every head, never a silent pass."""
    DroppingHeads.victim, DroppingHeads.whole = B, True
    try:
        w, _ = world(store, DroppingHeads)
        protect_and_ask(w, individual_number())
    finally:
        DroppingHeads.victim, DroppingHeads.whole = "", False
    assert Code.FLAG_DROPPED in checks(w, B).refusals
    assert checks(w, B).checked == 0


def test_a_hub_that_ignores_a_flag_when_routing_is_caught_by_the_provider(store: HubStore) -> None:
    """Hub insider: "answer automatically" about a person its own map flags. The provider A answers by staff
    and raises flag_ignored with the hub's signed decision, head and proof."""
    w, _ = world(store, IgnoringHeads)
    got = protect_and_ask(w, individual_number())
    assert routed(got[A]).answer == "staff"
    [incident] = checks(w, A).incidents
    assert incident.code == Code.FLAG_IGNORED and incident.request_id == routed(got[A]).request_id
    assert incident.evidence is not None and check_evidence(incident.evidence, w.cast.hub.signer.public_key)


def test_a_hub_that_serves_a_stale_map_is_refused_by_the_provider(store: HubStore) -> None:
    """Hub insider (or the broker operator replaying): a decision "auto" under the hub's first head, from before
    B's flag, while A has seen newer heads. A refuses it (stale_map) and answers by staff."""
    w, _ = world(store, StaleHeads)
    x = individual_number()
    w.agencies[A].file_person(x)  # the hub's first head: before any flag
    w.settle()
    read_all(w)
    got = protect_and_ask(w, x)
    assert routed(got[A]).answer == "staff"
    assert Code.STALE_MAP in checks(w, A).refusals and checks(w, A).incidents == []


def test_a_hub_that_stops_signing_heads_gets_no_automatic_answers(store: HubStore) -> None:
    """Hub insider freezing its map (or a hub cut off): the head a decision cites is older than the provider's
    bound by the provider's clock, so even a correct "auto" is answered by staff."""
    agency_clock = Clock()
    w, _ = world(store, DroppingHeads, agency_clock=agency_clock)
    y = individual_number()
    w.agencies[A].file_person(y)
    w.settle()
    read_all(w)
    agency_clock.advance(minutes=5)  # the hub's clock stands still: it signs no newer head
    w.agencies[C].query(y, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert routed(read_all(w)[A]).answer == "staff"
    assert checks(w, A).refusals == [Code.STALE_MAP]


def test_a_hub_that_rewrites_its_log_is_caught_by_every_witness(store: HubStore) -> None:
    """Hub insider: an old flag change rewritten in the hub's log. The next head's consistency proof fails at
    every agency's witness: hub_fork, with both heads and the failed proof."""
    w, _ = world(store, RewritingHeads)
    w.agencies[B].flag(individual_number(), ND, "set")
    w.settle()
    read_all(w)
    w.agencies[B].flag(individual_number(), ND, "set")
    w.settle()
    read_all(w)
    for name in (A, B, C):
        [incident] = checks(w, name).incidents
        assert incident.code == Code.HUB_FORK
        assert incident.evidence is not None and check_evidence(incident.evidence, w.cast.hub.signer.public_key)


def test_a_hub_that_shows_the_provider_another_head_is_caught_by_the_provider(store: HubStore) -> None:
    """Hub insider, split view: the decision cites a head with the number of one the hub announced to all, and
    another body. The provider raises hub_fork with the two signed heads and answers by staff."""
    w, _ = world(store, SplitHeads)
    got = protect_and_ask(w, individual_number())
    assert routed(got[A]).answer == "staff"
    [incident] = checks(w, A).incidents
    assert incident.code == Code.HUB_FORK and incident.evidence is not None
    assert len(incident.evidence.heads) == 2 and check_evidence(incident.evidence, w.cast.hub.signer.public_key)


def test_a_restarted_hub_rebuilds_its_map_and_continues_its_heads(store: HubStore) -> None:
    """Hub insider or a crash: a second hub process on the same database rebuilds the map from what was filed,
    and its next head extends the first's log and keeps the flag — the witnesses and the holder find nothing."""
    w, broker = world(store, DroppingHeads)
    x = individual_number()
    protect_and_ask(w, x)
    store.sequencer.release()
    again = open_hub_store(str(store.engine.url), "hub-2")
    try:
        assert w.hub.heads is not None
        w.hub = HubService(again, MemoryTransport(broker, "hub"), w.cast.hub, w.cast.directory(), w.hub.now,
                           heads=type(w.hub.heads)(w.cast.hub.signer, w.hub.heads.prover))  # fmt: skip
        w.agencies[B].flag(x, ND, "set")
        w.settle()
        read_all(w)
        for name in (A, B, C):
            assert checks(w, name).incidents == [] and checks(w, name).refusals == []
        assert checks(w, B).checked >= 2  # under the first hub's head and the second's
    finally:
        again.close()


def test_a_hub_that_answers_a_registration_with_another_key_is_refused(store: HubStore) -> None:
    """Hub insider giving the provider another person's map key (so it would check an unflagged leaf): the VRF
    proof does not verify against the number the provider sent; no key is kept, the hub's answer is raised as
    ``bad_person_key``, and a query about the person is answered by staff."""
    w, _ = world(store, BentKeyHeads)
    y = individual_number()
    w.agencies[A].file_person(y)
    w.settle()
    read_all(w)
    assert checks(w, A).keys == {} and [i.code for i in checks(w, A).incidents] == [Code.BAD_PERSON_KEY]
    w.agencies[C].query(y, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert routed(read_all(w)[A]).answer == "staff"
    assert checks(w, A).refusals == [Code.BAD_PROOF]  # the routed query about a person with no map key


def test_the_hub_signs_a_head_on_schedule_so_providers_keep_answering(store: HubStore) -> None:
    """Peer agency as provider (liveness of the age bound): with nothing filed, the hub still signs a head every
    ``every`` by its clock, each extending the last; a provider whose clock moves with the hub's answers
    automatically under the newest."""
    clock = Clock()
    w, _ = world(store, DroppingHeads, hub_clock=clock, agency_clock=clock)
    y = individual_number()
    w.agencies[A].file_person(y)
    w.settle()
    read_all(w)
    assert w.hub.heads is not None and w.hub.heads.last is not None
    first = w.hub.heads.last.seq
    clock.advance(minutes=5)
    w.hub.step(timeout_ms=10)
    read_all(w)
    assert w.hub.heads.last.seq > first
    w.agencies[C].query(y, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert routed(read_all(w)[A]).answer == "auto"
    assert checks(w, A).refusals == [] and checks(w, A).incidents == []


@pytest.fixture
def keep_engine(backend: str | None, tmp_path: Path) -> Iterator[Engine]:
    """An agency node's database (its operational tables migrated), for the checks kept across restarts."""
    with ExitStack() as stack:
        url = backend or f"sqlite:///{tmp_path / 'agency.sqlite'}"
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        stack.callback(engine.dispose)
        upgrade(engine)
        yield engine


def restarted(w: World, name: str, engine: Engine) -> MapChecks:
    """The agency's checks as a restarted node makes them: empty, then what its database kept."""
    old = checks(w, name)
    new = MapChecks(name, old.hub_key, old.vrf_key, old.max_age, old.now, keep=SqlMapKeep(engine, name))
    w.agencies[name].checks = new
    return new


def test_an_agency_keeps_its_checks_across_a_restart(store: HubStore, keep_engine: Engine) -> None:
    """Hub insider waiting for an agency to restart: the restarted holder still knows its map keys and its
    filed flags and goes on checking them, its witness still holds the newest head, and the evidence it
    raised before the restart is still there, checkable by a third party."""
    w, _ = world(store, IgnoringHeads)
    for name in (A, B):
        restarted(w, name, keep_engine)  # from the start: every state change kept
    x = individual_number()
    protect_and_ask(w, x)
    before_a, before_b = checks(w, A), checks(w, B)
    assert before_a.incidents and before_b.checked >= 1
    after_a, after_b = restarted(w, A, keep_engine), restarted(w, B, keep_engine)
    assert after_b.keys == before_b.keys and after_b.held == before_b.held and after_b.filed_at == before_b.filed_at
    assert after_a.keys == before_a.keys and after_a.witness.latest == before_a.witness.latest
    [incident] = after_a.incidents
    assert incident.code == Code.FLAG_IGNORED and incident.evidence is not None
    assert check_evidence(incident.evidence, w.cast.hub.signer.public_key)
    w.agencies[B].flag(x, ND, "set")
    w.settle()
    read_all(w)
    assert after_b.checked == 1 and after_b.refusals == [] and after_b.incidents == []
    assert after_b.held[w.agencies[B].code(x)] == {NA, ND}


def test_a_holder_with_many_flags_is_shown_a_moving_window_of_them(store: HubStore) -> None:
    """Peer agency as holder, and the broker operator (a message's size): a holder with more flagged people
    than one announcement carries is shown ``MAX_HOLDINGS`` of them per head, a window that moves with each
    head, so the announcement stays inside a bucket and each flag is checked within a few heads."""
    w, _ = world(store, DroppingHeads)
    people = [individual_number() for _ in range(MAX_HOLDINGS + 2)]
    for x in people:
        w.agencies[B].flag(x, NA, "set")
    w.settle(rounds=40)
    read_all(w)
    w.agencies[B].flag(people[0], ND, "set")  # one more head
    w.settle()
    read_all(w)
    b = checks(w, B)
    assert b.refusals == [] and b.incidents == []
    assert b.checked >= MAX_HOLDINGS + 2 - 1  # two windows: every code but at most one, the second time round


def test_a_hub_that_shows_two_agencies_two_heads_is_caught_by_witnesses_comparing_them(store: HubStore) -> None:
    """Hub insider, split view by announcement: each agency's own heads form one consistent history, but B is
    shown another head than A under each number. Neither finds anything alone; A's witness, shown B's newest
    head (gossip, or an independent witness such as a prefecture node), raises hub_fork with both signed heads."""
    TwoFacedHeads.victim = B
    try:
        w, _ = world(store, TwoFacedHeads)
        w.agencies[B].flag(individual_number(), NA, "set")
        w.settle()
        read_all(w)
    finally:
        TwoFacedHeads.victim = ""
    assert checks(w, A).incidents == [] and checks(w, B).incidents == []
    shown_b = checks(w, B).witness.latest
    assert shown_b is not None
    incident = checks(w, A).gossip(shown_b)
    assert incident is not None and incident.code == Code.HUB_FORK and incident.evidence is not None
    assert check_evidence(incident.evidence, w.cast.hub.signer.public_key)
    assert checks(w, C).gossip(checks(w, A).witness.latest) is None  # agreeing witnesses find nothing


# -- different stories under different heads (docs/accountable-hub.md, "One chain of heads") --------------


def story_world(store: HubStore, **kw: object) -> tuple[World, str]:
    """B protects X, A holds X; then the hub drops X's flag under one head, shown to all but B, routes C's query
    to A "auto" under it, and restores the flag under the next head."""
    w, _ = world(store, StoryHeads, **kw)
    x = individual_number()
    w.agencies[B].flag(x, NA, "set")
    w.agencies[A].file_person(x)
    w.settle()
    read_all(w)
    heads = w.hub.heads
    assert isinstance(heads, StoryHeads)
    heads.victim = w.hub.store.codes.person(A, w.agencies[A].code(x)) or ""
    heads.hidden = B
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    return w, x


def test_a_hub_telling_another_story_under_a_head_the_holder_never_sees_is_caught(store: HubStore) -> None:
    """Threat: the hub insider — X's flag dropped under head n+1 only, an automatic answer routed under it, and
    n+1 kept from the holder B, which sees n and then n+2 (the flag back). Every head names its predecessor and
    its index, so B's next head shows the gap: ``head_skipped``, with the two signed heads as evidence."""
    w, _ = story_world(store)
    got = read_all(w)
    assert routed(got[A]).answer == "auto"  # no witnesses required here: the provider had no way to know
    w.hub.heads.settle(w.hub.store, w.hub._seal, list(w.agencies), w.hub.now())  # type: ignore[union-attr]
    w.settle()
    read_all(w)
    [incident] = [i for i in checks(w, B).incidents if i.code == Code.HEAD_SKIPPED]
    assert incident.evidence is not None and check_evidence(incident.evidence, w.cast.hub.signer.public_key)
    before, after = incident.evidence.heads
    assert after.index == before.index + 2  # the head it was not shown lies between
    assert checks(w, A).incidents == [] and checks(w, C).incidents == []


def test_a_provider_requiring_a_witness_answers_nothing_automatically_under_an_uncosigned_head(
    store: HubStore,
) -> None:
    """Threat: the hub insider — the same story, but the provider A names a witness and needs one cosignature:
    the head the hub cites was cosigned by no witness (none saw it), so A answers by staff
    (``head_uncosigned``), and the automatic answer the lie was for never goes out."""
    w, _ = world(store, StoryHeads)
    witness = Signer.generate("W-KANTO")
    a = checks(w, A)
    a.witnesses, a.witness_keys = ("W-KANTO",), lambda party, key_id: witness.public_key
    x = individual_number()
    w.agencies[B].flag(x, NA, "set")
    w.agencies[A].file_person(x)
    w.settle()
    read_all(w)
    heads = w.hub.heads
    assert isinstance(heads, StoryHeads)
    heads.victim, heads.hidden = w.hub.store.codes.person(A, w.agencies[A].code(x)) or "", B
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    assert routed(read_all(w)[A]).answer == "staff"
    assert Code.HEAD_UNCOSIGNED in a.refusals


def test_a_hub_that_never_acknowledges_a_change_is_raised_by_the_holder(store: HubStore) -> None:
    """Threat: the hub insider — B files X's flag and the hub says nothing (no acknowledgement, no head). Past
    the deadline the holder raises ``change_unseen``; an honest hub that shows the flag under a head raises
    nothing however long after."""
    clock = Clock()
    w, _ = world(store, DroppingHeads, agency_clock=clock)
    b = checks(w, B)
    x = individual_number()
    w.agencies[B].flag(x, NA, "set")  # the hub's loop is never stepped: it files nothing, says nothing
    clock.advance(seconds=b.deadline.total_seconds() - 1)
    assert b.overdue() == []
    clock.advance(seconds=2)
    [incident] = b.overdue()
    assert incident.code == Code.CHANGE_UNSEEN and incident.evidence is None and b.incidents == [incident]
    assert b.overdue() == []  # raised once
    # control: an honest hub acknowledges and shows it; no incident however long after
    y = individual_number()
    w.agencies[B].flag(y, NA, "set")
    w.settle()
    read_all(w)
    assert b.unseen == {} and b.checked >= 2  # both acknowledged and shown under a head
    clock.advance(hours=1)
    assert b.overdue() == []


def test_heads_no_witness_cosigns_raise_an_incident_past_the_deadline(store: HubStore) -> None:
    """Threat: the hub insider keeping its heads from the witnesses (or the witnesses' cosignatures from the
    agencies): a holder that names a witness sees heads but no cosignature of any; past the deadline it raises
    ``head_uncosigned``, once per deadline; with no witnesses named nothing is expected."""
    clock = Clock()
    w, _ = world(store, DroppingHeads, agency_clock=clock)
    witness = Signer.generate("W-KANTO")
    b = checks(w, B)
    b.witnesses, b.witness_keys = ("W-KANTO",), lambda party, key_id: witness.public_key
    w.agencies[B].flag(individual_number(), NA, "set")
    w.settle()
    read_all(w)
    assert b.witnessed_at == clock.at and b.cosigned == set()
    clock.advance(seconds=b.deadline.total_seconds() + 1)
    codes = [i.code for i in b.overdue()]
    assert Code.HEAD_UNCOSIGNED in codes and b.overdue() == []
    assert [i for i in checks(w, C).overdue() if i.code == Code.HEAD_UNCOSIGNED] == []  # C names no witness
