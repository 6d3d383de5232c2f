"""The hub's sequence number goes only to agencies that understand it (issue 19, docs/linkage.md "Upgrade order"):
agency nodes in hub mode and the hub on SQLite and PostgreSQL, the in-memory transport.

Threat: the perpetrator (and the operators), through a stalled fleet. An agency node of an older release decodes
the hub's messages strictly and parks one carrying the unknown ``hub_seq``: a hub upgraded before its agencies
would stall every one of them — no routed query answered, no flag filed back. The hub puts ``hub_seq`` only in
messages to an agency whose imported entry names the feature; one without it gets what an older hub sent, and
its records, unstamped, are filed at their arrival as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.linkage_seen import highest
from ledger.app import Actor
from ledger.hub.tables import hub_parked, hub_sealed_records
from ledger.linkage.agency import _INBOUND  # what an agency decodes; an older release decoded it strictly
from ledger.linkage.hub_seq import HUB_SEQ
from ledger.linkage.messages import decode
from ledger.linkage.names import HUB
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import Topics
from ledger.runtime.linkage import party_keys
from ledger.runtime.tables import linkage_parked
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_world, release_flag, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number


@pytest.fixture
def older_a(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """A the provider, its entry imported from an older release (no features); B the holder, C the querier."""
    with hub_world(make_node, backend, tmp_path, (A, B, C), older=(A,)) as w:
        yield w


@pytest.fixture
def current(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    with hub_world(make_node, backend, tmp_path, (A, B, C)) as w:
        yield w


def from_hub(w: HubNodes, code: str) -> list[tuple[str, dict[str, object]]]:
    """(kind, JSON payload) of every message the hub sealed to ``code``, opened with its keys."""
    keys = party_keys(w.nodes[code])
    sender_keys = w.hub.directory.sender_keys(w.nodes[code].app.clock())
    found = []
    for message in w.broker.topics.get(Topics().inbox(code), []):
        opened = unseal(keys.sealing, code, message, sender_keys)
        if opened.sender == HUB:
            found.append((opened.kind, json.loads(opened.payload)))
    return found


def record_kinds(w: HubNodes, code: str) -> list[str]:
    """The kinds of the provision records ``code`` sent the hub (opened with the hub's keys)."""
    sender_keys = w.hub.directory.sender_keys(w.nodes[code].app.clock())
    opened = [unseal(w.hub_keys.sealing, HUB, m, sender_keys) for m in w.broker.topics.get(Topics().inbox(HUB), [])]
    return [o.kind for o in opened if o.sender == code and o.kind.endswith("_record")]


def protected_then_released(w: HubNodes) -> None:
    """B protects X, C asks A about X (A holds it), B releases, C asks again (A provides)."""
    x = individual_number()
    set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
    w.bridges[A].file_person(x)
    w.settle()
    for released in (False, True):
        if released:
            release_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
            w.settle()
        w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        w.settle()


def filed(w: HubNodes) -> list[tuple[int, int]]:
    """(arrival, position) of every record at the hub."""
    r = hub_sealed_records.c
    with w.hub.store.engine.connect() as conn:
        return sorted((int(s), int(p)) for s, p in conn.execute(select(r.seq, r.position)))


def nothing_parked(w: HubNodes) -> None:
    with w.hub.store.engine.connect() as conn:
        assert conn.execute(select(hub_parked)).all() == []
    for node in w.nodes.values():
        with node.engine.connect() as conn:
            assert conn.execute(select(linkage_parked)).all() == []


def test_an_agency_whose_entry_names_no_features_gets_no_hub_seq_and_still_works(older_a: HubNodes) -> None:
    """Perpetrator through a stalled fleet: the hub upgraded, A's entry still the older release's. Every message
    the hub sealed to A (opened with A's keys) has no ``hub_seq`` and decodes as an older release decodes it,
    strictly; B's (a current entry) carry it. A still answers both queries end to end; its records come
    unstamped, filed at their arrival; nothing is parked anywhere."""
    w = older_a
    protected_then_released(w)
    to_a, to_b = from_hub(w, A), from_hub(w, B)
    assert to_a and to_b
    assert all(HUB_SEQ not in payload for _, payload in to_a)
    for kind, payload in to_a:
        decode(_INBOUND[kind], json.dumps(payload).encode())  # the older release's strict decoding: no error
    assert all(HUB_SEQ in payload for _, payload in to_b)
    assert highest(w.nodes[A].engine) is None and highest(w.nodes[B].engine) is not None
    assert record_kinds(w, A) == ["sealed_record", "sealed_record"]  # unstamped, as from an older release
    records = filed(w)
    assert len(records) == 2 and all(position == arrival for arrival, position in records)
    nothing_parked(w)


def test_an_agency_whose_entry_names_hub_seq_gets_it_and_stamps_its_records(current: HubNodes) -> None:
    """Perpetrator at the portal, the control: A's entry names ``hub_seq``: every message the hub sealed to A
    carries it, A keeps the highest, and its records reach the hub stamped (each filed at no later than its
    arrival)."""
    w = current
    protected_then_released(w)
    to_a = from_hub(w, A)
    assert to_a and all(isinstance(payload.get(HUB_SEQ), int) for _, payload in to_a)
    seen = highest(w.nodes[A].engine)
    assert seen is not None and seen == max(int(str(p[HUB_SEQ])) for _, p in to_a)
    assert record_kinds(w, A) == ["stamped_record", "stamped_record"]
    records = filed(w)
    assert len(records) == 2 and all(position <= arrival for arrival, position in records)
    nothing_parked(w)
