"""A generated history of a protected person's year across three municipalities (issue 21, docs/year.md):
protections, moves, takeovers, releases, terms, emergency flags, cases with companions and perpetrators, named
risks and the clock's step, chosen at random; and the reads that must answer the same however they list the
year's aggregates (a full scan, the year index, the year's rows). Used by tests/integration/test_year_index.py
and tests/integration/test_year_rows.py."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from ledger.app import Actor
from tests.conftest import A, B, C

__all__ = ["KINDS", "indexed", "reads", "scanning", "step"]

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
TOWNS = (A, B, C)
# every kind of year-queue item a history must reach
KINDS = {"handovers", "last_holder_warnings", "terms", "provisional", "perpetrators", "companions"}


@contextmanager
def indexed(app: Any) -> Iterator[None]:
    """The same app reading the year's listings from the year index (every aggregate of a kind loaded), not
    from the year's rows (ledger/app/year_index.py; the reads before projections/year_rows.py)."""
    rows, app.year_rows = app.year_rows, None
    try:
        yield
    finally:
        app.year_rows = rows


@contextmanager
def scanning(app: Any) -> Iterator[None]:
    """The same app reading the year's aggregates by a pass over the whole log (the reads before the index)."""
    app._year_aggregates = app._aggregates
    try:
        with indexed(app):
            yield
    finally:
        del app._year_aggregates


def reads(app: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for town in TOWNS:
        for staff in ("req", "admin"):  # (approvers and operators see what requesters see)
            out[f"{town}/{staff}/queue"] = app.year_queue(Actor(town, staff))
        out[f"{town}/risks"] = app.release_risks(Actor(town, "req"))
        out[f"{town}/cases"] = app.open_cases(Actor(town, "req"))
    return out


def step(app: Any, rng: random.Random, people: list[str], person: Callable[[], str]) -> None:
    """One staff act (or the clock's step), chosen at random; a refusal by the app's rules is part of a history."""
    town = rng.choice(TOWNS)
    x = rng.choice(people)
    act = rng.randrange(9)
    if act == 0:
        rid = app.request_flags(Actor(town, "req"), x, rng.choice([[ND], [NAR], [ND, NAR]]))
        if rng.random() < 0.8:
            app.approve_request(Actor(town, "apr"), rid)
            app.execute_request(Actor(town, "op"), rid)
    elif act == 1:
        app.record_move(Actor(town, "req"), x, to_agency=rng.choice([t for t in TOWNS if t != town]),
                        moved_on=app.clock().date() - timedelta(days=rng.randrange(30)))  # fmt: skip
    elif act == 2:
        for h in app.year_queue(Actor(town, "req"))["handovers"][:1]:
            rid = app.request_flags(Actor(town, "req"), h["subject"], h["flags_to_take_over"])
            app.approve_request(Actor(town, "apr"), rid)
            app.execute_request(Actor(town, "op"), rid)
    elif act == 3:
        held = [(p, fl) for p in people if (fl := sorted(f for f, w in app.holders_anywhere(app.subject(p)).items()
                                                       if town in w))]  # fmt: skip
        if not held:
            return
        who, flags = rng.choice(held)
        rid = app.request_flags(Actor(town, "req"), who, flags, kind="release", explanation="終了")
        if rng.random() < 0.3:
            return  # left waiting: a last holder's release stays in every holder's queue
        app.approve_request(Actor(town, "apr"), rid)
        if rng.random() < 0.5:
            app.approve_request(Actor(town, "apr2"), rid)
        app.execute_request(Actor(town, "op"), rid)
    elif act == 4:
        app.record_application(Actor(town, "req"), x, app.clock().date() - timedelta(days=rng.randrange(300, 420)))
    elif act == 5:
        app.set_provisional(Actor(town, "op"), x, [ND, NAR], explanation="夜間の緊急相談")
    elif act == 6:
        case = app.open_case(Actor(town, "req"), x, perpetrators=[rng.choice(people)])
        rid = app.propose_companion(Actor(town, "req"), case, person(), flags=[NAR])
        if rng.random() < 0.7:  # attached with NAR only: once the victim holds ND here, the queue prompts for it
            app.approve_request(Actor(town, "apr"), rid)
            app.execute_request(Actor(town, "op"), rid)
            rid = app.request_flags(Actor(town, "req"), x, [ND])
            app.approve_request(Actor(town, "apr"), rid)
            app.execute_request(Actor(town, "op"), rid)
    elif act == 7:
        decision = app.propose_release_risk(Actor(town, "req"), x, [ND, NAR], "所在が知られうる")
        if rng.random() < 0.7:
            app.approve_release_risk(Actor(town, "apr"), decision)
    else:
        start = app.clock()
        app.clock = lambda: start + timedelta(days=rng.randrange(1, 40))
        app.year_step()
