"""The cut-over from old-format number links (issue 21): ``linkage.number_links.old_format_refused_from``.

A link names, signed, the move its node knew; a peer that strips it (the old format, ``class_version`` 1) is
judged by the link's own date, which its clock sets — so it could backdate its link past a move recorded only
elsewhere. Once every node names the move, an operator sets the cut-over: an old-format link signed at or after
it is parked ``old_link_format``; one signed before it is judged by its date as before, a move recorded since the
cut-over counting whatever its date. The receiving node runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers.ingest import Outcome, ingest
from consumers.parked import parked
from ledger import clock
from ledger.app import Actor
from ledger.errors import ConfigurationError
from ledger.runtime.bootstrap import Node, open_node
from tests.conftest import B, C, NodeFactory
from tests.integration.test_link_named_move import EARLIER, as_before_named_moves, deliver, nodes, protect, sent
from tests.support.links import link
from tests.support.pending import pending_parking


@pytest.fixture
def world(make_node: NodeFactory, tmp_path: Path, backend: str | None) -> tuple[Node, Node, Node]:
    return nodes(make_node, tmp_path, backend)


def stripped_link_past_a_move_elsewhere(world: tuple[Node, Node, Node], person: Any, cut: bool) -> tuple[bytes, str]:
    """X moved to B (recorded at C); B links X's numbers and strips the named move (the old format); C records
    X's move on to C, dated after the link (B's node never signs it). With ``cut``, A's cut-over falls between
    B's signing and C's recording. A has every event but the link; the link and X's new number are returned."""
    a, b, c = world
    x, new_number = person(), person()
    protect(c, x, C)
    c.app.record_move(Actor(C, "req"), x, to_agency=B, from_agency=C, moved_on=EARLIER)
    deliver(b, sent(c), pending_parking(b))
    start = b.app.max_position()
    _, new = link(b.app, B, x, new_number)
    (linked,) = sent(b, start)
    if cut:
        a.app.old_links_refused_from = clock.now()
    c.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=clock.now().date() + timedelta(1))
    assert {o.kind for o in deliver(a, sent(c), pending_parking(a))} == {"applied"}
    return as_before_named_moves(b, linked), new


def test_a_stripped_link_signed_after_the_cut_over_is_parked_old_link_format(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: a peer agency stripping the named move from its link (sending the old format) to backdate it past
    X's move recorded only at C. With A's cut-over before the link's signed time, A parks it at once
    ``old_link_format``, nothing applied, the reason telling the operator what it means and naming no number."""
    a = world[0]
    raw, new = stripped_link_past_a_move_elsewhere(world, person, cut=False)
    a.app.old_links_refused_from = clock.now() - timedelta(hours=1)
    size = a.app.max_position()
    outcome = ingest(a.app, raw, pending_parking(a))
    assert outcome.kind == "parked" and outcome.code == "old_link_format", outcome
    assert "old format" in outcome.reason and "runs a release from before" in outcome.reason
    assert "stripped" in outcome.reason and new not in outcome.reason
    assert a.app.max_position() == size and a.state.linked(new) is None


def test_before_the_cut_over_a_stripped_link_is_judged_by_its_date_as_today(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: the same stripped link (a peer agency) — and, for the other side, a peer's genuine old-format link
    parked by a cut-over not yet reached (nodes diverging). Signed before A's cut-over, with the move elsewhere
    recorded before it too, the link is judged by its date as without a cut-over: applied (the hole the cut-over
    closes only from its time on; docs/operations.md)."""
    a = world[0]
    raw, new = stripped_link_past_a_move_elsewhere(world, person, cut=False)
    a.app.old_links_refused_from = clock.now() + timedelta(days=1)
    assert deliver(a, [raw], pending_parking(a)) == [Outcome("applied", applied=1)]
    assert a.state.linked(new) is not None and parked(a) == []


def test_a_stripped_link_backdated_under_the_cut_over_still_meets_a_move_recorded_since(
    world: tuple[Node, Node, Node], person: Any
) -> None:
    """Threat: a peer agency dating its stripped link before the cut-over to be judged by its date, past a move
    recorded (only at C) after the cut-over: that move counts whatever its date — held, nothing applied."""
    a = world[0]
    raw, new = stripped_link_past_a_move_elsewhere(world, person, cut=True)
    size = a.app.max_position()
    outcome = ingest(a.app, raw, pending_parking(a))
    assert outcome.kind == "held_residence" and outcome.code == "not_residence", outcome
    assert a.app.max_position() == size and a.state.linked(new) is None


@pytest.mark.parametrize("value", ["2027-01-04T00:00:00", "next monday"])
def test_a_bad_cut_over_refuses_the_start(sqlite_node: Node, value: str) -> None:
    """Threat: the administrator's typo — a node running without the cut-over it was told to enforce, or with a
    naive time each node reads in its own zone: the node does not open, the error names the setting."""
    config = sqlite_node.config
    config.linkage = {**config.linkage, "number_links": {"old_format_refused_from": value}}
    config.save()
    with pytest.raises(ConfigurationError, match="old_format_refused_from"):
        open_node(config.data_dir)
    config.linkage["number_links"] = {"old_format_refused_from": "2027-01-04T00:00:00+09:00"}
    config.save()
    opened = open_node(config.data_dir)
    try:
        cutover = opened.app.old_links_refused_from
        assert cutover is not None and cutover.isoformat() == "2027-01-04T00:00:00+09:00"
    finally:
        opened.close()
