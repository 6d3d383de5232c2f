"""Migration 0012 on a node that already kept flag-map keys: each kept key becomes the agency's held value.

Threat: two colluding insiders at two agencies. Before 0012 a hub-mode agency kept each person's map key as it
was — one value at every agency, a national join key. A node upgraded from 0009 must keep none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ledger.linkage.person_keys import held_key
from ledger.runtime.migrations import HEAD, current, upgrade
from ledger.runtime.tables import agency_map_keys
from tests.support.node_migrations import at_revision, empty_node_database


@pytest.fixture
def engine(backend: str | None, tmp_path: Path) -> Iterator[Engine]:
    with empty_node_database(backend, tmp_path) as made:
        yield made


def test_kept_map_keys_become_held_values_per_agency(engine: Engine) -> None:
    at_revision(engine, "0009")
    key_1, key_2 = os.urandom(32), os.urandom(32)
    rows = [
        {"agency": "131016", "code": "c-1", "map_key": key_1},
        {"agency": "131016", "code": "c-2", "map_key": key_2},
        {"agency": "131024", "code": "d-1", "map_key": key_1},  # the same person, known to a second agency here
    ]
    with engine.begin() as conn:
        conn.execute(agency_map_keys.insert(), rows)

    assert upgrade(engine) == "0009"
    with engine.connect() as conn:
        assert current(conn) == HEAD
        kept = {(r.agency, r.code): bytes(r.map_key) for r in conn.execute(select(agency_map_keys))}
    assert kept == {(r["agency"], r["code"]): held_key(str(r["agency"]), bytes(r["map_key"])) for r in rows}
    assert not {key_1, key_2} & set(kept.values())  # no key itself is left
    assert kept[("131016", "c-1")] != kept[("131024", "d-1")]  # one person, two agencies: nothing to join on
    assert upgrade(engine) == HEAD  # a second open migrates nothing (the held values are not hashed again)
