"""A record late to the hub (issue 19, docs/linkage.md "Limits of the sequence"): agency nodes in hub mode and the
hub on SQLite and PostgreSQL, the in-memory transport.

Threat: the perpetrator reading the victim's portal page. A provision record made while a holder protects the
person names who asked about them; if its provider was cut off from the hub and the record arrives after the
release, the hub's sequence alone would file it after the release and show it. The hub puts its sequence
number in each message to an agency, the agency stamps each record with the highest it had seen when it made
it, and the hub hides from the lower of the stamp and the arrival — no clock compared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.linkage_seen import highest
from ledger.app import Actor
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.sealed_records import SealedPage, sealed_page
from ledger.hub.tables import hub_flag_changes, hub_parked, hub_sealed_records
from ledger.linkage.codes import Registration, portal_code, register
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.names import PORTAL
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_world, release_flag, set_flag
from tests.support.hub_world import A, B, C, Cast, World
from tests.support.people import individual_number

AT = "2026-01-01T09:00:00+09:00"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """A the provider, B the holder, C the querier: each node and the hub on its own database."""
    with hub_world(make_node, backend, tmp_path, (A, B, C)) as w:
        yield w


@pytest.fixture
def ends(backend: str | None, tmp_path: Path) -> Iterator[World]:
    """The hub's loop with agencies' ends (no node): a provider that sends what it likes."""
    store: HubStore = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend, "hub-1")
    broker = MemoryBroker()
    yield World.open(Cast.of(A, B, C, PORTAL), store, lambda p: MemoryTransport(broker, p))
    store.close()


def page(w: HubNodes, number: str) -> SealedPage:
    """The person's page as the hub feeds it to the portal (the portal's code registered at the hub)."""
    assert w.portal_keys is not None
    code = portal_code(w.portal_keys.secret, number)
    register(w.hub.store.codes, w.hub.keys.secret, Registration(PORTAL, code, number))
    return sealed_page(w.hub.store.engine, w.hub.store.codes, code)


def settle_cut_off(w: HubNodes, cut: str, rounds: int = 10) -> None:
    """:meth:`HubNodes.settle` with ``cut`` unable to send: it reads the hub's messages, and what it sends waits."""
    for _ in range(rounds):
        for code, bridge in w.bridges.items():
            if code != cut:
                bridge.push()
        w.hub.step(timeout_ms=20)
        for bridge in w.bridges.values():
            bridge.pull(timeout_ms=20)


def filed(w: HubNodes) -> dict[str, tuple[int, int]]:
    """Record id → (arrival, position) at the hub."""
    r = hub_sealed_records.c
    with w.hub.store.engine.connect() as conn:
        return {str(i): (int(s), int(p)) for i, s, p in conn.execute(select(r.record_id, r.seq, r.position))}


def release_seq(w: HubNodes) -> int:
    f = hub_flag_changes.c
    with w.hub.store.engine.connect() as conn:
        return int(conn.execute(select(f.seq).where(f.action == "release")).scalar_one())


def ask(w: HubNodes, number: str) -> str:
    return w.bridges[C].ask(Actor(C, "counter"), A, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)


def test_a_record_made_under_protection_that_reaches_the_hub_after_the_release_stays_hidden(world: HubNodes) -> None:
    """Perpetrator at the portal: B protects X; C's query about X reaches A, which holds it and makes its record —
    then A is cut off from sending (it still reads the hub's messages). B releases; C asks again and A, reading
    the hub's routed query sent after the release, makes a second record. A's bridge restarts (no memory) and A
    reconnects: both records reach the hub after the release. The first, made under protection, stays hidden
    (filed by its arrival alone it would show: its arrival is after the release, asserted); the second shows."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    ask(world, x)
    settle_cut_off(world, A)  # routed to A, held: the record made, never sent
    release_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    settle_cut_off(world, A)
    ask(world, x)  # after the release: routed "auto", provided at A, recorded — still not sent
    settle_cut_off(world, A)
    assert filed(world) == {}  # nothing of A's reached the hub yet
    seen = highest(world.nodes[A].engine)  # past the release: stamped when sent, the first record would show
    assert seen is not None and seen >= release_seq(world)

    world.bridge(A)  # restarted: what it knows is in its database
    world.settle()
    released = release_seq(world)
    records = filed(world)
    assert len(records) == 2
    (_, (held_arrival, held_at)), (given_id, (_, given_at)) = sorted(records.items(), key=lambda r: r[1][0])
    shown = page(world, x)
    assert [r.record_id for r in shown.records] == [given_id] and shown.note == HIDDEN_NOTE
    assert held_arrival > released  # late: by its arrival it would be filed after the release, and show
    assert held_at < released <= given_at


def test_a_record_made_after_the_release_by_a_connected_provider_shows(world: HubNodes) -> None:
    """Perpetrator at the portal, the control: all connected, a record made under protection is hidden and one
    made after the release shows — stamps hide no more than the hub's sequence did for a provider in touch."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    ask(world, x)
    world.settle()
    release_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.settle()
    ask(world, x)
    world.settle()
    released = release_seq(world)
    records = sorted(filed(world).values())
    assert len(records) == 2
    (first_arrival, first_at), (second_arrival, second_at) = records
    assert first_at <= first_arrival < released <= second_at <= second_arrival
    shown = page(world, x)
    assert len(shown.records) == 1 and shown.note == HIDDEN_NOTE
    assert shown.records[0].record_id == max(filed(world), key=lambda i: filed(world)[i][0])


def test_a_stamp_above_the_arrival_is_a_lie_and_the_arrival_decides(ends: World) -> None:
    """Perpetrator at the portal, helped by a provider that lies: a record made under protection, stamped far
    past any number the hub handed out, is filed at its arrival (still hidden, as before stamps); a low stamp
    only hides a provider's own record more. No number past the hub's last is stored."""
    w = ends
    x = individual_number()
    code = w.agencies[PORTAL].file_person(x)
    w.agencies[B].flag(x, "NON_DISCLOSURE", "set")
    w.settle()
    a = w.agencies[A]
    a.file_person(x)
    w.settle()
    lie = a.sealed_record(a.code(x), uuid.uuid4().hex, C, PROCEDURE, ITEM, INFO, "held", AT, stamp=2**62)
    a.send(lie)
    w.settle()
    w.agencies[B].flag(x, "NON_DISCLOSURE", "release")
    w.settle()
    low = a.sealed_record(a.code(x), uuid.uuid4().hex, C, PROCEDURE, ITEM, INFO, "provided", AT, stamp=0)
    a.send(low)
    honest = a.sealed_record(a.code(x), uuid.uuid4().hex, C, PROCEDURE, ITEM, INFO, "provided", AT)  # unstamped
    a.send(honest)
    w.settle()
    r = hub_sealed_records.c
    with w.hub.store.engine.connect() as conn:
        rows = {str(i): (int(s), int(p)) for i, s, p in conn.execute(select(r.record_id, r.seq, r.position))}
    assert rows[lie.record_id][1] == rows[lie.record_id][0]  # clamped to its arrival
    assert rows[low.record_id][1] == 0 and rows[honest.record_id][1] == rows[honest.record_id][0]
    shown = sealed_page(w.hub.store.engine, w.hub.store.codes, code)
    assert [e.record_id for e in shown.records] == [honest.record_id] and shown.note == HIDDEN_NOTE


@pytest.mark.parametrize("stamp", [-1, "7", True, 2**63, 1.5, None])
def test_a_malformed_stamp_is_parked_not_filed(ends: World, stamp: object) -> None:
    """Peer agency sending junk: a stamp that is no sequence number (negative, a string, a boolean, past a
    BIGINT, a fraction, null) parks the record as ``malformed`` with its reason; the hub goes on."""
    w = ends
    x = individual_number()
    a = w.agencies[A]
    a.file_person(x)
    w.settle()
    good = a.sealed_record(a.code(x), uuid.uuid4().hex, C, PROCEDURE, ITEM, INFO, "held", AT)
    payload = json.dumps({"record_id": good.record_id, "code": good.code, "contents": good.contents, "stamp": stamp})
    a._send("stamped_record", payload.encode())
    after = a.sealed_record(a.code(x), uuid.uuid4().hex, C, PROCEDURE, ITEM, INFO, "held", AT, stamp=1)
    a.send(after)
    w.settle()
    p = hub_parked.c
    with w.hub.store.engine.connect() as conn:
        parked = [(str(c), str(r)) for c, r in conn.execute(select(p.code, p.reason))]
        ids = set(conn.execute(select(hub_sealed_records.c.record_id)).scalars())
    assert len(parked) == 1 and parked[0][0] == "malformed" and "stamp" in parked[0][1]
    assert ids == {after.record_id}


def _decide(w: HubNodes, advice: str, decision: str) -> None:
    """B's reviewer advises on the consultation, A's reviewer and approver decide, A's batch releases it."""
    from datetime import timedelta

    from consumers import linkage_decisions as decisions
    from ledger.app.answers import run_batches
    from ledger.runtime.tables import linkage_routed

    a, b = w.nodes[A], w.nodes[B]
    (consultation,) = w.bridges[B].consultations()
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], advice)
    w.settle()
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = uuid.UUID(routed.local_request_id)
    decisions.propose(a.app, a.engine, Actor(A, "rev"), local, decision, "unknown")
    version = a.app.provision_request(local).proposal_version
    assert version is not None
    decisions.approve(a.app, a.engine, Actor(A, "apr"), local, version)
    w.settle()
    run_batches(a.app, a.app.clock() + timedelta(days=2))
    w.settle()


def _outcomes(w: HubNodes, number: str) -> list[tuple[str, str]]:
    """(record id, outcome) of the person's page as the portal opens it."""
    from ledger.hub.sealed_records import open_page
    from tests.support.wire_scan import portal_inbox

    assert w.portal_keys is not None
    keys = w.hub.directory.sender_keys(w.nodes[A].app.clock())
    wires, _ = portal_inbox(w.broker, w.portal_keys, keys)
    opened = open_page(w.portal_keys, page(w, number), keys, wires)
    return [(r.record_id, r.outcome) for r in opened.records]


def test_a_later_outcome_updates_the_record_in_its_place(world: HubNodes) -> None:
    """Perpetrator at the portal (the person's own page, what it says of a request about them): B holds
    NO_AUTO_RESPONSE (it hides nothing); C's query is held at A, filed "held"; A's staff decide to provide and
    the batch releases it: the page shows one record, the same, now "provided_manually" — its number and
    position unchanged, the update filed under a number of its own."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NO_AUTO_RESPONSE")
    world.bridges[A].file_person(x)
    world.settle()
    ask(world, x)
    world.settle()
    (first,) = filed(world).items()
    assert _outcomes(world, x) == [(first[0], "held")]
    _decide(world, "may_disclose", "provide")
    assert filed(world) == dict([first])  # one record, where it was
    assert _outcomes(world, x) == [(first[0], "provided_manually")]
    r = hub_sealed_records.c
    with world.hub.store.engine.connect() as conn:
        updated, version = conn.execute(select(r.updated, r.outcome_version)).one()
    assert updated > first[1][0] and version > 1


def test_an_outcome_decided_after_the_release_keeps_the_record_hidden(world: HubNodes) -> None:
    """Perpetrator at the portal: B protects X with NON_DISCLOSURE; C's query is held at A, its record hidden;
    B releases before A's staff decide; the decision's outcome reaches the hub after the release and updates
    the record where it was filed — still hidden (filed as a new record it would show)."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    ask(world, x)
    world.settle()
    (first,) = filed(world).items()
    release_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.settle()
    _decide(world, "do_not_disclose", "refuse")
    r = hub_sealed_records.c
    with world.hub.store.engine.connect() as conn:
        updated = conn.execute(select(r.updated)).scalar_one()
    assert updated is not None and updated > release_seq(world)  # decided, and sent, after the release
    assert filed(world) == dict([first])
    shown = page(world, x)
    assert shown.records == () and shown.note == HIDDEN_NOTE


def test_an_outcome_update_is_the_providers_own_newer_and_never_unshreds(ends: World) -> None:
    """Peer agency and the broker operator: another provider's outcome for A's record is parked ``not_found``
    (nothing changed); an older version after a newer one (a resend, reordered) changes nothing; an outcome after
    A erased the person leaves the contents shredded — an update never brings back what an erasure took."""
    from ledger.linkage.erasure_messages import ErasureMessage
    from ledger.linkage.record_contents import RecordOutcomeMessage

    w = ends
    x = individual_number()
    a, c = w.agencies[A], w.agencies[C]
    a.file_person(x)
    c.file_person(x)
    rid = a.record(x, B, PROCEDURE, ITEM, INFO, "held", AT)
    w.settle()

    def outcome(end: object, outcome: str, version: int) -> RecordOutcomeMessage:
        assert isinstance(end, type(a))
        m = end.sealed_record(end.code(x), rid, B, PROCEDURE, ITEM, INFO, outcome, AT)
        return RecordOutcomeMessage(rid, m.code, m.contents, version)

    def row() -> tuple[bytes, int | None, int | None]:
        r = hub_sealed_records.c
        with w.hub.store.engine.connect() as conn:
            got = conn.execute(select(r.contents, r.outcome_version, r.updated).where(r.record_id == rid)).one()
        return bytes(got[0]), got[1], got[2]

    first = row()
    c.send(outcome(c, "provided_manually", 5))  # C's code for X, C's signature: not C's record
    w.settle()
    p = hub_parked.c
    with w.hub.store.engine.connect() as conn:
        assert [str(code) for code in conn.execute(select(p.code)).scalars()] == ["not_found"]
    assert row() == first
    newer = outcome(a, "refused", 7)
    a.send(newer)
    w.settle()
    assert row()[0] == newer.sealed() and row()[1] == 7
    updated = row()[2]
    assert updated is not None
    a.send(outcome(a, "provided_manually", 6))  # older: kept as it was
    w.settle()
    assert row() == (newer.sealed(), 7, updated)
    a.send(ErasureMessage(uuid.uuid4().hex, a.code(x)))
    w.settle()
    assert row()[0] == b""
    a.send(outcome(a, "provided_manually", 9))
    w.settle()
    assert row()[0] == b""  # stays shredded
