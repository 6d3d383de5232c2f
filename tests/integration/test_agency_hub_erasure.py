"""An agency node in hub mode erases a person (issue 22): its four-eyes erasure reaches the hub through its
bridge, and the hub shreds the records that agency sent it about the person — on SQLite and PostgreSQL.

Threat: an insider at the hub after the erasure, holding the hub's keys and the portal's (the records' contents
are sealed to the portal): no contents of the erased person's records from the erasing agency are left; the
other person's stay (the control).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.hub.erasure import erasures
from ledger.hub.tables import hub_sealed_records
from ledger.linkage.record_contents import open_contents
from ledger.linkage.wire_keys import WireLookup
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_world
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.wire_scan import portal_inbox


def request_refs(app: object, request: object) -> list[str]:
    """The key refs the erasure's ``Erased`` event names in the node's log."""
    from ledger.audit.erasures import recorded_erasures

    return [r for r, e in recorded_erasures(app).items() if e["request"] == str(request)]  # type: ignore[arg-type]


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    with hub_world(make_node, backend, tmp_path, (A, B, C)) as w:
        yield w


def at_the_portal(world: HubNodes) -> tuple[WireLookup, list[tuple[str, list[str]]]]:
    """What the portal's inbox carries for it: the wire keys delivered, and the wire erasures (sender, refs)."""
    assert world.portal_keys is not None
    return portal_inbox(world.broker, world.portal_keys, world.hub.directory.sender_keys(world.nodes[A].app.clock()))


def opened(world: HubNodes) -> list[tuple[str, str, str]]:
    """(provider, record id, querier) of every record's contents the hub keeps, opened with the portal's key and
    the wire keys delivered to it (none after the erasure: the portal destroys its copies)."""
    assert world.portal_keys is not None
    keys = world.hub.directory.sender_keys(world.nodes[A].app.clock())
    wires = at_the_portal(world)[0]
    with world.hub.store.engine.connect() as conn:
        rows = conn.execute(select(hub_sealed_records)).all()
    return sorted(
        (
            r.provider,
            r.record_id,
            open_contents(world.portal_keys, r.contents, keys, r.record_id, r.provider, wires).querier,
        )
        for r in rows
        if r.contents
    )


def test_an_erasure_approved_at_a_hub_mode_node_shreds_its_records_at_the_hub(world: HubNodes) -> None:
    """Insider at the hub after the erasure: C asks A about X and Z, A answers both and sends the hub its two
    records; A's administrators erase X (four eyes); the bridge sends the erasure, the hub shreds A's record
    about X and records the erasure under A's request id; Z's record stays."""
    x, z = individual_number(), individual_number()
    for number in (x, z):
        world.bridges[A].file_person(number)
    world.settle()
    asked = {
        n: world.bridges[C].ask(Actor(C, "counter"), A, n, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        for n in (x, z)
    }
    world.settle()
    assert [world.bridges[C].query(asked[n])["status"] for n in (x, z)] == ["answered", "answered"]
    before = opened(world)
    assert [(p, q) for p, _, q in before] == [(A, C), (A, C)]  # the control: both records opened at the hub

    a = world.nodes[A].app
    request = a.request_erasure(Actor(A, "admin"), x, "retention of the provision record ended")
    a.approve_erasure(Actor(A, "admin2"), request)
    world.settle()

    [done] = erasures(world.hub.store.engine)
    assert (done["agency"], done["erasure_id"], done["records"]) == (A, request.hex, 1)
    after = opened(world)
    assert len(after) == 1 and after[0] in before
    with world.hub.store.engine.connect() as conn:
        shredded = conn.execute(select(hub_sealed_records).where(hub_sealed_records.c.contents == b"")).all()
    assert [r.provider for r in shredded] == [A] and shredded[0].record_id not in {r for _, r, _ in after}
    world.settle()  # the erasure is sent once: nothing moves again
    assert len(erasures(world.hub.store.engine)) == 1
    # the portal is told, relayed by the hub, to destroy exactly the wire key of X's record (A's node destroyed
    # its own with X's data keys): Z's key is neither named nor gone at A
    lookup, erased = at_the_portal(world)
    delivered = lookup.keys  # type: ignore[attr-defined]
    assert len(delivered) == 2 and [(sender, len(refs)) for sender, refs in erased] == [(A, 1)]
    [ref] = erased[0][1]
    dk = a.signed_mapper.data_keys
    assert dk is not None and ref in request_refs(a, request) and dk.held([ref]) == []
    z_ref = next(r.hex() for r in delivered if r.hex() != ref)
    assert dk.held([z_ref]) == [z_ref]


def test_a_record_pushed_after_its_persons_erasure_goes_under_a_key_the_portal_is_told_to_destroy(
    world: HubNodes,
) -> None:
    """Insider at the portal, broker operator: A answers C's query about X (its record is in A's log) and its
    administrators erase X before A's bridge pushed anything; the push then makes X's wire key anew for that
    record — the bridge destroys it too and names it in the wire erasure, so no key for X's record is left at
    A or at the portal, and the hub shreds the record."""
    x = individual_number()
    world.bridges[A].file_person(x)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.bridges[C].push()
    world.hub.step(timeout_ms=50)
    world.bridges[A].pull(timeout_ms=200)  # A answers in its log; its bridge has not pushed the record yet
    a = world.nodes[A].app
    request = a.request_erasure(Actor(A, "admin"), x, "retention of the provision record ended")
    a.approve_erasure(Actor(A, "admin2"), request)
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "answered"
    lookup, erased = at_the_portal(world)
    delivered = lookup.keys  # type: ignore[attr-defined]
    assert len(delivered) == 1 and erased == [(A, [next(iter(delivered)).hex()])]  # the late key, named
    dk = a.signed_mapper.data_keys
    assert dk is not None and dk.held([next(iter(delivered)).hex()]) == []
    [done] = erasures(world.hub.store.engine)
    assert done["records"] == 1 and opened(world) == []
