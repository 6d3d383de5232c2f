"""Erasure and the hub's word on the person's handovers (issue 22 with issue 19; docs/erasure.md), on SQLite and
PostgreSQL.

Threat: an insider who copies the data directory (or, on PostgreSQL, the database's files) after the person's
retention ended. An agency node in hub mode keeps what the hub told it of the person's handovers — asked to take
over (and withdrawn: she moved on), where the person it reported moved now holds flags (and held onward), the
last-holder warnings — in operational tables no rebuild makes. The erasure drops the erased person's rows from
each of them, on disk too; everyone else's stay and still read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from consumers.linkage_moves import apply
from ledger.app import Actor
from ledger.errors import Code, RuleViolation
from ledger.linkage.messages import Message
from ledger.linkage.moves import (
    HandedOn,
    HandedOver,
    HandoverMessage,
    HandoverWithdrawn,
    LastHolderWarned,
    MoveRefused,
)
from ledger.runtime.bootstrap import Node
from ledger.runtime.erasure_scrub import scrub_after_erasure
from ledger.runtime.handovers import KEPT, HubHandovers, move_id
from ledger.runtime.linkage import code_of
from tests.conftest import A
from tests.integration.test_erasure import _files_holding, _postgres_files_holding, _postgres_rows

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _handovers(node: Node, subject: str) -> tuple[list[str], uuid.UUID]:
    """The hub's word on every kind of handover of ``subject`` but an open request (which holds the erasure back:
    below), kept as the bridge keeps it: the ids of the rows (each a value only that row holds) and the stream of
    the move it reported."""
    code, move, refused = code_of(subject), uuid.uuid4(), move_id(uuid.uuid4())
    withdrawn, warning = uuid.uuid4().hex, uuid.uuid4().hex
    _heard(
        node,
        HandoverMessage(handover_id=withdrawn, code=code, moved_on="2026-10-01", flags=ND),
        HandoverWithdrawn(code=code),  # she moved on: the request above is kept as withdrawn
        HandedOver(move_id=move_id(move), code=code, to_agency="131024", flags=f"{ND},{NAR}"),
        HandedOn(move_id=move_id(move), code=code, flags=ND),
        LastHolderWarned(warning_id=warning, code=code, flags=NAR),
        MoveRefused(move_id=refused, code=code, reason=Code.NOT_RESIDENCE),  # a later move, reported from elsewhere
    )
    return [withdrawn, move_id(move), warning, refused], move


def _heard(node: Node, *words: Message) -> None:
    """``words`` from the hub, kept as the node's bridge keeps them (``consumers.linkage_moves.apply``)."""
    with node.engine.begin() as conn:
        for word in words:
            apply(conn, A, word, NOW)


def _rows_of(node: Node, subject: str) -> dict[str, int]:
    with node.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t).where(t.c.subject == subject)).scalar_one())
            for t in KEPT
        }


def test_erasure_drops_the_persons_handovers_from_every_table_and_file(
    make_node: Callable[..., Node], backend: str | None, person: Callable[[], str]
) -> None:
    """Insider with the data directory after retention ended: before the erasure each kind of the person's
    handover rows is there (the scan sees it), after it none is — not in a table, not in a file of the node (on
    PostgreSQL: not in a row, nor in the database's files after a checkpoint); another person's stay and read."""
    node = make_node(database_url=backend)
    app = node.app
    app.hub_moves = HubHandovers(node.engine)  # as in hub mode (ledger.runtime.linkage.attach)
    target, other = app.subject(person()), app.subject(person())
    app.open_case(Actor(A, "req"), target, notes="TARGET-intake")  # a data key to destroy
    ids, _ = _handovers(node, target)
    kept_ids, kept_move = _handovers(node, other)
    asked = uuid.uuid4().hex  # the other person's open request stays, listed
    _heard(node, HandoverMessage(handover_id=asked, code=code_of(other), moved_on="2026-11-01", flags=ND))
    needles = [i.encode() for i in ids]
    assert set(_rows_of(node, target).values()) == {1} and sum(_rows_of(node, target).values()) == 5
    if backend is None:
        with node.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        found = _files_holding(node.config.data_dir, needles)
        assert {f.split(": ", 1)[1] for f in found} == set(ids), "scan is blind"
    else:
        assert all(any(i in r for r in _postgres_rows(backend)) for i in ids), "scan is blind"
        assert _postgres_files_holding(backend, needles), "scan is blind"

    request = app.request_erasure(Actor(A, "admin"), target, "retention of the case ended")
    app.approve_erasure(Actor(A, "admin2"), request, note="checked")
    scrub_after_erasure(node)

    assert set(_rows_of(node, target).values()) == {0}
    assert _files_holding(node.config.data_dir, needles) == []
    if backend is not None:
        assert not [r for r in _postgres_rows(backend) if any(i in r for i in ids)]
        assert _postgres_files_holding(backend, needles) == []
    # the other person's rows stay, each where the application reads it
    assert sum(_rows_of(node, other).values()) == 6
    hub = HubHandovers(node.engine)
    assert [h["handover_id"] for h in hub.asked(A)] == [asked]
    assert [w["warning_id"] for w in hub.warned(A)] == [kept_ids[2]]
    assert [r["move_id"] for r in hub.refused(A)] == [kept_ids[3]]
    assert hub.taken_over(other) == {ND: ["131024"], NAR: ["131024"]} and hub.taken_onward(other, kept_move) == {ND}
    assert hub.taken_over(target) == {}


def test_an_open_handover_request_holds_the_erasure_back_until_it_is_withdrawn(
    make_node: Callable[..., Node], person: Callable[[], str]
) -> None:
    """Perpetrator waiting for protection to lapse where she now lives: while the hub asks this municipality to
    take over the person's protection, erasing her is refused (``handover_open``) — the erasure would drop the
    request from the handover queue, her flags taken over by no one; an erasure requested before the request
    came is refused at approval. Once withdrawn, the erasure goes ahead and drops the rows."""
    node = make_node()
    app = node.app
    app.hub_moves = HubHandovers(node.engine)  # as in hub mode (ledger.runtime.linkage.attach)
    target = app.subject(person())
    app.open_case(Actor(A, "req"), target, notes="TARGET-intake")
    early = app.request_erasure(Actor(A, "admin"), target, "retention of the case ended")
    _heard(node, HandoverMessage(handover_id=uuid.uuid4().hex, code=code_of(target), moved_on="2026-11-01", flags=ND))
    with pytest.raises(RuleViolation) as refused:
        app.request_erasure(Actor(A, "admin"), target, "retention of the case ended")
    assert refused.value.code == Code.HANDOVER_OPEN
    with pytest.raises(RuleViolation) as refused:
        app.approve_erasure(Actor(A, "admin2"), early)
    assert refused.value.code == Code.HANDOVER_OPEN
    assert [h["subject"] for h in app.hub_moves.asked(A)] == [target]  # still asked, still listed

    _heard(node, HandoverWithdrawn(code=code_of(target)))
    app.approve_erasure(Actor(A, "admin2"), early, note="checked")
    scrub_after_erasure(node)
    assert set(_rows_of(node, target).values()) == {0}
