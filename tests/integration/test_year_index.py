"""The year index (ledger/app/year_index.py) gives the answers a full scan of the log gives: on a generated
history of protections, moves, takeovers, releases, terms, emergency flags, cases with companions and
perpetrators and named risks across three municipalities (tests/support/year_history.py), every agency's year
queue, its named risks and open cases and each step of the clock are the same read through the index (followed
incrementally, step by step) as read by scanning the whole log."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from ledger.errors import FlagLedgerError
from ledger.runtime.bootstrap import Node
from tests.support.year_history import REACHED, indexed, reached, reads, scanned_reads, scanning, step


def test_the_year_index_answers_as_a_scan_of_the_whole_log(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: the perpetrator (a handover, a term or a last-holder warning the queue silently dropped would
    leave a person's new municipality or their holders unasked). After every step of a generated history the
    index's answers equal the scan's, and the history reached each kind of item."""
    app = sqlite_node.app
    now = datetime(2026, 12, 7, 10, tzinfo=UTC)
    app.clock = lambda: now
    rng = random.Random(20261207)
    people = [person() for _ in range(5)]
    seen: set[str] = set()
    with indexed(app):
        for _ in range(60):
            # a refusal by the app's rules (already held, four eyes, handover pending…) records nothing
            with suppress(FlagLedgerError):
                step(app, rng, people, person)
            by_index = reads(app)
            scanned = scanned_reads(app)
            assert by_index == scanned
            seen |= reached(by_index)
        assert seen == REACHED
        later = app.clock() + timedelta(days=400)
        app.clock = lambda: later
        assert app.year_step(), "400 days on, reminders or escalations are due (recorded through the index)"
        with scanning(app):
            assert app.year_step() == [], "a scan finds nothing the index's step left undone"
            scanned = reads(app)
        assert reads(app) == scanned
