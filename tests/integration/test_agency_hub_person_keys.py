"""The registration's VRF proof checked at the agency node in hub mode (issue #19, consumers/linkage_map.py): the
node keeps no number, yet holds the hub's answer to a registration to the keyed check it kept when the number was
typed (``linkage_registrations.person_check``). Real nodes, bridges and hub loop on one memory transport; the hub a
real :class:`MapHeads` — honest, or bent in its answer to registrations; every database on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Connection, select

from consumers.linkage_receipt import HELD_HERE
from ledger.app import Actor
from ledger.app.incidents import incidents_of
from ledger.errors import Code
from ledger.hub.heads import MapHeads
from ledger.linkage.person_keys import held_key
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_parked, linkage_registrations, linkage_routed
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_world
from tests.support.hub_world import A, C
from tests.support.map_hub import BentKeyHeads
from tests.support.people import individual_number


class GarbledHeads(MapHeads):
    """Answers registrations with bytes of a proof's size that are no proof (a hub whose answer was corrupted,
    or one that sends anything at all and keeps the key it likes)."""

    def registered(self, person: str, number: str) -> tuple[bytes, bytes, Callable[[Connection, int], None]]:
        pi, key, keep = super().registered(person, number)
        return bytes([pi[0] ^ 0x01]) + pi[1:], key, keep


def _world(make_node: NodeFactory, backend: str | None, tmp_path: Path, heads: Any) -> Iterator[HubNodes]:
    with hub_world(make_node, backend, tmp_path, (A, C), heads) as w:
        yield w


@pytest.fixture
def honest(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path, MapHeads)


@pytest.fixture(params=[BentKeyHeads, GarbledHeads], ids=["another_numbers_proof", "garbled_proof"])
def bending(
    request: pytest.FixtureRequest, make_node: NodeFactory, backend: str | None, tmp_path: Path
) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path, request.param)


def _asked_about(world: HubNodes, number: str) -> tuple[str, str]:
    """A files the person, C asks A about them; (C's answer status, A's mark on the routed request)."""
    world.bridges[A].file_person(number)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    a = world.nodes[A]
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed).where(linkage_routed.c.subject == a.app.subject(number)))
    status = a.app.provision_request(UUID(routed.local_request_id)).status
    return world.bridges[C].query(asked)["status"], f"{status}/{routed.staff_answer}"


def test_an_honest_hubs_proof_checks_at_the_node_and_the_key_is_relied_on(honest: HubNodes) -> None:
    """Threat: a malicious or compromised hub (the control). The node kept a keyed check when X's number was
    typed — no number, and not the map key; the hub's VRF proof checks against it, so the node keeps the key
    the hub's own map uses (as its held value) and answers C's query about unflagged X automatically. No
    incident, nothing parked."""
    world, x = honest, individual_number()
    status, _ = _asked_about(world, x)
    a = world.nodes[A]
    with a.engine.connect() as conn:
        (row,) = conn.execute(select(linkage_registrations)).all()
    assert row.person_check is not None and len(row.person_check) == 32 and x.encode() not in bytes(row.person_check)
    checks, code = world.bridges[A].checks, code_of(a.app.subject(x))
    assert checks is not None and list(checks.keys) == [code]
    heads = world.hub.heads  # the key the hub's map files X under, as A holds it
    assert heads is not None and [checks.keys[code]] == [held_key(A, k) for k in heads.keys.values()]
    assert status == "answered"
    assert not incidents_of(a.app, A) and checks.incidents == []
    with a.engine.connect() as conn:
        assert conn.execute(select(linkage_parked)).all() == []


def test_a_hub_answering_a_registration_with_a_bad_proof_is_caught_at_the_node(bending: HubNodes) -> None:
    """Threat: a malicious or compromised hub bending X's map key at registration — another number's real VRF
    proof, or bytes that are no proof — so that A would check the hub's decisions about X at a leaf the hub
    chose. A's node holds the proof to the check it kept when X's number was typed: it does not keep the key,
    raises ``bad_person_key`` as a security incident (kind ``hub_misbehaviour``, its note parked), and C's query
    about X — unflagged, which an honest hub's proof lets A answer automatically (the control above) — is held
    for staff at A and never answered automatically."""
    world, x = bending, individual_number()
    status, mark = _asked_about(world, x)
    a = world.nodes[A]
    checks = world.bridges[A].checks
    assert checks is not None and checks.keys == {}
    assert [i.code for i in checks.incidents] == [Code.BAD_PERSON_KEY]
    (incident,) = incidents_of(a.app, A)
    assert (incident.kind, incident.code) == ("hub_misbehaviour", Code.BAD_PERSON_KEY)
    with a.engine.connect() as conn:
        parked = [(r.direction, r.code, r.reason) for r in conn.execute(select(linkage_parked))]
    assert [p[:2] for p in parked] == [("in", Code.BAD_PERSON_KEY)] and "not relied on" in parked[0][2]
    assert status == "in_progress" and mark == f"held/{HELD_HERE}"
    assert Code.BAD_PROOF in checks.refusals  # the routed query about a person with no map key here
