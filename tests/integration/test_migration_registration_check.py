"""Migration 0017 on a node at 0014: ``linkage_registrations`` gets ``person_check`` (the keyed check of the hub's
VRF proof, ledger.linkage.person_keys.person_key_check), and the registrations kept before are left as they were,
without one — so the hub's answer to them is refused at the node, never taken unchecked.

Threat: a malicious or compromised hub bending a person's map key at registration, counting on a node upgraded
from 0014 that has no check to hold the proof to.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, inspect, select

from ledger.runtime.migrations import HEAD, current, upgrade
from ledger.runtime.tables import linkage_registrations
from tests.support.node_migrations import at_revision, empty_node_database


@pytest.fixture
def engine(backend: str | None, tmp_path: Path) -> Iterator[Engine]:
    with empty_node_database(backend, tmp_path) as made:
        yield made


def test_0017_applies_on_a_node_at_0014(engine: Engine) -> None:
    """A hub insider counting on an upgraded node: the old row is kept, with no check (so its answer is refused)."""
    at_revision(engine, "0014")
    columns = {c["name"] for c in inspect(engine).get_columns("linkage_registrations")}
    assert "person_check" not in columns
    sealed = os.urandom(200)
    with engine.begin() as conn:
        conn.execute(insert(linkage_registrations).values(subject="p" + "1" * 32, sealed=sealed, sent=0))

    assert upgrade(engine) == "0014"
    with engine.begin() as conn:
        assert current(conn) == HEAD
        rows = [dict(r._mapping) for r in conn.execute(select(linkage_registrations))]
        assert rows == [{"subject": "p" + "1" * 32, "sealed": sealed, "sent": 0, "person_check": None}]
        check = os.urandom(32)
        conn.execute(
            insert(linkage_registrations).values(subject="p" + "2" * 32, sealed=b"", sent=0, person_check=check)
        )
        kept = conn.execute(
            select(linkage_registrations.c.person_check).where(linkage_registrations.c.subject == "p" + "2" * 32)
        ).scalar_one()
        assert kept == check
    assert upgrade(engine) == HEAD  # a second open migrates nothing
