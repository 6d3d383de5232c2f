"""Migration 0014 on a node at 0013: the tables for witnesses' cosignatures of the node's own checkpoints
(``linkage_cosignatures``) and for the deadlines of flag changes the hub has not yet shown (``agency_map_unseen``)
are made, and what the node kept before is left as it was.

Threat: a hub insider (or one dropping relays) counting on a node that forgets — a node upgraded from 0013 must
be able to keep both, or a restart would lose the evidence and the deadlines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, inspect, select

from ledger.runtime.migrations import HEAD, current, upgrade
from ledger.runtime.tables import agency_map_unseen, linkage_cosignatures, linkage_handovers
from tests.support.node_migrations import at_revision, empty_node_database


@pytest.fixture
def engine(backend: str | None, tmp_path: Path) -> Iterator[Engine]:
    with empty_node_database(backend, tmp_path) as made:
        yield made


def test_0014_applies_on_a_node_at_0013(engine: Engine) -> None:
    at_revision(engine, "0013")
    assert not {"linkage_cosignatures", "agency_map_unseen"} & set(inspect(engine).get_table_names())
    handover = {"id": "h-1", "direction": "out", "subject": "c-1", "to_agency": "131024", "moved_on": "2026-12-01",
                "flags": "NON_DISCLOSURE", "at": "2026-12-01T00:00:00+09:00"}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(linkage_handovers).values(**handover))

    assert upgrade(engine) == "0013"  # from 0013 on to HEAD (0014 and any later revision)
    with engine.begin() as conn:
        assert current(conn) == HEAD
        assert [dict(r._mapping) for r in conn.execute(select(linkage_handovers))] == [handover]  # kept as it was
        cosig = {"witness": "W-KANTO", "size": 7, "root": "ab" * 32, "key_id": "W-KANTO:1", "head": os.urandom(120),
                 "signature": os.urandom(64), "received_at": "2026-12-07T09:00:00+09:00"}  # fmt: skip
        conn.execute(insert(linkage_cosignatures).values(**cosig))
        due = "2026-12-07T09:05:00+09:00"
        conn.execute(insert(agency_map_unseen).values(agency="131016", code="c-1", filed_at=3, due=due))
        assert [dict(r._mapping) for r in conn.execute(select(linkage_cosignatures))] == [cosig]
        assert conn.execute(select(agency_map_unseen.c.filed_at)).scalar_one() == 3
    assert upgrade(engine) == HEAD  # a second open migrates nothing
