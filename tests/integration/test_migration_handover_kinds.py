"""Migration 0020 on a node at 0019 with handover rows of every kind: the ``wd``, ``on`` and ``lh`` rows an older
node kept in ``linkage_handovers`` move to their own tables (``linkage_handovers_withdrawn``,
``linkage_handed_on``, ``linkage_holder_warnings``), the ``in`` and ``out`` rows stay, and the application's
readers find each where it was before.

Threat: the perpetrator, waiting for protection to lapse — an upgrade that lost a withdrawn request, a
handed-on word or a last-holder warning would change what the release guard and the year queue see.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text

from ledger.runtime.handovers import HubHandovers, move_id, onward_id
from ledger.runtime.migrations import HEAD, current, upgrade
from ledger.runtime.tables import (
    linkage_handed_on,
    linkage_handovers,
    linkage_handovers_withdrawn,
    linkage_holder_warnings,
)
from tests.support.node_migrations import at_revision, empty_node_database

ME = "131016"
MOVE = uuid.uuid4()


@pytest.fixture
def engine(backend: str | None, tmp_path: Path) -> Iterator[Engine]:
    with empty_node_database(backend, tmp_path) as made:
        yield made


def _row(rid: str, direction: str, subject: str, to_agency: str, moved_on: str, flags: str) -> dict[str, str]:
    return {"id": rid, "direction": direction, "subject": subject, "to_agency": to_agency, "moved_on": moved_on,
            "flags": flags, "at": f"2026-12-0{len(rid) % 9 + 1}T00:00:00+09:00"}  # fmt: skip


def test_0020_moves_each_kind_of_handover_row_to_its_own_table(engine: Engine) -> None:
    at_revision(engine, "0019")
    assert not {"linkage_handed_on", "linkage_holder_warnings"} & set(inspect(engine).get_table_names())
    asked = _row("a" * 32, "in", "p1", ME, "2026-11-01", "NON_DISCLOSURE")
    out = _row(move_id(MOVE), "out", "p2", "131024", "", "NON_DISCLOSURE,NO_AUTO_RESPONSE")
    withdrawn = _row("b" * 32, "wd", "p3", ME, "2026-10-01", "NO_AUTO_RESPONSE")
    onward = _row(onward_id(move_id(MOVE)), "on", "p2", "", "", "NON_DISCLOSURE")
    warned = _row("c" * 32, "lh", "p4", ME, "", "NON_DISCLOSURE")
    columns = "id, direction, subject, to_agency, moved_on, flags, at"
    with engine.begin() as conn:  # as the 0019 node's bridge wrote them (one table, told apart by direction)
        for row in (asked, out, withdrawn, onward, warned):
            conn.execute(text(f"INSERT INTO linkage_handovers ({columns}) VALUES "
                              "(:id, :direction, :subject, :to_agency, :moved_on, :flags, :at)"), row)  # fmt: skip

    assert upgrade(engine) == "0019"
    with engine.begin() as conn:
        assert current(conn) == HEAD
        stay = [dict(r._mapping) for r in conn.execute(select(linkage_handovers).order_by(linkage_handovers.c.id))]
        assert stay == sorted([asked, out], key=lambda r: r["id"])  # in and out rows, as they were
        rows = [dict(r._mapping) for r in conn.execute(select(linkage_handovers_withdrawn))]
        assert rows == [{k: v for k, v in withdrawn.items() if k != "direction"}]
        rows = [dict(r._mapping) for r in conn.execute(select(linkage_handed_on))]
        assert rows == [{k: onward[k] for k in ("id", "subject", "flags", "at")}]
        rows = [dict(r._mapping) for r in conn.execute(select(linkage_holder_warnings))]
        assert rows == [{k: warned[k] for k in ("id", "subject", "to_agency", "flags", "at")}]
    # the application reads each kind where it now lives
    hub = HubHandovers(engine)
    assert [h["handover_id"] for h in hub.asked(ME)] == [asked["id"]]  # the withdrawn one is not asked
    assert hub.warned(ME) == [{"warning_id": warned["id"], "subject": "p4", "flags": ["NON_DISCLOSURE"]}]
    assert hub.taken_onward("p2", MOVE) == {"NON_DISCLOSURE"}
    assert hub.taken_over("p2") == {"NON_DISCLOSURE": ["131024"], "NO_AUTO_RESPONSE": ["131024"]}
    assert upgrade(engine) == HEAD  # a second open migrates nothing
