"""The year's rows (projections/year_rows.py) give the answers a full scan of the log gives, and a rebuild
equals them: on the generated history of tests/support/year_history.py (three municipalities, every kind of
year-queue item, guardian bars, a support centre's requests), after every step every agency's year queue,
named risks, open cases, guardian bars and body inbox, the centre's requests with their outcomes — and the
clock's step — read through the rows equal the same reads by a pass over the whole log, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import FlagLedgerError
from ledger.runtime.bootstrap import Node
from projections.views_queues import work_queue
from projections.year_rows import year_rows
from tests.conftest import B, C
from tests.support.approvals import approve_fully
from tests.support.year_history import REACHED, reached, reads, scanned_reads, scanning, step


def _rows(node: Node) -> list[tuple[Any, ...]]:
    node.projector.catch_up()
    with node.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(year_rows).order_by(year_rows.c.kind, year_rows.c.item_id))]


def test_the_year_rows_answer_as_a_scan_of_the_whole_log_and_a_rebuild_equals_them(
    node: Node, person: Callable[[], str]
) -> None:
    """Threat: the perpetrator — a pending request, open term, move or warning the rows missed would drop an
    item from a queue (a handover never asked for, an overdue term never escalated) and leave someone
    unprotected: after every step of a generated history the rows' answers equal a full scan's, and the history
    reached each kind of item. And an insider editing the views: `audit views` trusts a rebuild to be what the
    live path holds — the rebuilt rows equal the live ones."""
    app = node.app
    assert app.year_rows is not None, "the bootstrap wires the year's rows"
    now = datetime(2026, 12, 7, 10, tzinfo=UTC)
    app.clock = lambda: now
    rng = random.Random(20261207)
    people = [person() for _ in range(5)]
    seen: set[str] = set()
    for _ in range(60):
        with suppress(FlagLedgerError):  # a refusal by the app's rules records nothing
            step(app, rng, people, person)
        by_rows = reads(app)
        scanned = scanned_reads(app)
        assert by_rows == scanned
        seen |= reached(by_rows)
    assert seen == REACHED
    later = app.clock() + timedelta(days=400)
    app.clock = lambda: later
    assert app.year_step(), "400 days on, reminders or escalations are due (recorded through the rows)"
    with scanning(app):
        assert app.year_step() == [], "a scan finds nothing the rows' step left undone"
        scanned = reads(app)
    assert reads(app) == scanned
    live = _rows(node)
    assert {r[0] for r in live} >= {"move", "warning", "term", "case", "waiting_set", "risk", "bar", "body_request",
                                    "body_outcome"}  # fmt: skip
    node.projector.rebuild(["year_rows"])
    assert _rows(node) == live


def test_a_row_naming_what_is_not_there_adds_nothing(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: an insider editing the views database — a row added by hand (a term of another agency, an id
    naming no aggregate or another kind's) is loaded and tested by the app, so the queue shows nothing more;
    a deleted row hides an item only from the listing (`audit views` names it), never from a guard."""
    app = sqlite_node.app
    x = person()
    app.record_application(Actor(B, "req"), x, app.clock().date() - timedelta(days=360))
    assert app.year_step(B), "the term ends within 30 days: reminded"
    before = app.year_queue(Actor(B, "req"))
    assert [t["subject"] for t in before["terms"]] == [app.subject(x)]
    term_id = before["terms"][0]["term_id"]
    with sqlite_node.engine.begin() as conn:
        conn.execute(year_rows.insert(), [
            {"kind": "term", "item_id": "not-a-uuid", "agency": B, "subject": "s", "position": 1},
            {"kind": "term", "item_id": "00000000-0000-0000-0000-000000000001", "agency": B, "subject": "s",
             "position": 2},
            {"kind": "provisional", "item_id": term_id, "agency": B, "subject": "s", "position": 3},
        ])  # fmt: skip
    assert app.year_queue(Actor(B, "req")) == before


def test_an_erasure_drops_the_erasing_agencys_own_rows_about_the_person(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: an insider with the views after an erasure (docs/erasure.md) — the erasing agency's local items
    about the person (term, case, waiting request) leave the rows, live and on a rebuild; and the perpetrator —
    the shared move stays, so the new municipality is still asked to take over."""
    app = sqlite_node.app
    x = person()
    rid = app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"])
    approve_fully(app, B, rid)
    app.execute_request(Actor(B, "op"), rid)
    app.record_application(Actor(B, "req"), x, app.clock().date())
    app.open_case(Actor(B, "req"), x, perpetrators=[person()])
    app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    app.record_move(Actor(B, "req"), x, to_agency=C, moved_on=app.clock().date())
    s = app.subject(x)
    assert {r[0] for r in _rows(sqlite_node) if r[3] == s} == {"term", "case", "waiting_set", "move"}
    app.approve_erasure(Actor(B, "admin2"), app.request_erasure(Actor(B, "admin"), x, "retention ended"))
    live = _rows(sqlite_node)
    assert {r[0] for r in live if r[3] == s} == {"move"}
    assert [h["subject"] for h in app.year_queue(Actor(C, "req"))["handovers"]] == [s]
    sqlite_node.projector.rebuild(["year_rows"])
    assert _rows(sqlite_node) == live


def test_the_work_queue_carries_the_year_queue(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: the perpetrator — a handover shown only on a page of its own is missed by staff who read the work
    queue (`view queue`, `GET /api/v1/queue`): it carries the year queue, the same as `year queue`, for staff with
    a part in protection decisions, and nothing of it for a counter clerk (who reads no year queue)."""
    app = sqlite_node.app
    x = person()
    rid = app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"])
    approve_fully(app, B, rid)
    app.execute_request(Actor(B, "op"), rid)
    app.record_move(Actor(B, "req"), x, to_agency=C, moved_on=app.clock().date())
    queue = work_queue(sqlite_node, Actor(C, "req"))
    assert queue.year == app.year_queue(Actor(C, "req"))
    assert [h["subject"] for h in queue.year["handovers"]] == [app.subject(x)]
    assert work_queue(sqlite_node, Actor(C, "counter")).year is None
    assert work_queue(sqlite_node, Actor(C, "req"), held=False).year is None  # a page that only counts
