"""A generated history of a protected person's year across three municipalities (issue 21, docs/year.md):
protections, moves, takeovers, releases, terms, emergency flags, cases with companions and perpetrators, named
risks, guardian bars, a support centre's requests and the clock's step, chosen at random; and the reads that
must answer the same however they list the year's aggregates (a full scan, the year index, the year's rows).
Used by tests/integration/test_year_index.py and tests/integration/test_year_rows.py."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from ledger.app import Actor
from tests.conftest import SC, A, B, C

__all__ = ["KINDS", "REACHED", "indexed", "reached", "reads", "scanned_reads", "scanning", "step"]

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
TOWNS = (A, B, C)
# every kind of year-queue item a history must reach
KINDS = {"handovers", "last_holder_warnings", "terms", "provisional", "perpetrators", "companions"}
# and of the other listings: bars in force and proposed, body requests answered (with outcomes) and not
REACHED = KINDS | {"bar_in_force", "bar_proposed", "body_outcome", "body_sent"}


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


def scanned_reads(app: Any) -> dict[str, Any]:
    """:func:`reads` answered by a full pass over the log, as under :func:`scanning`, with each kind's pass made
    once for all the reads (they would otherwise repeat it some twenty times over an unchanged log: most of the
    year tests' time on PostgreSQL). The log is checked unchanged by the reads, so one pass serves them all."""
    passes: dict[tuple[type, str], list[Any]] = {}

    def once(cls: type, event: str) -> Iterator[Any]:
        if (cls, event) not in passes:
            passes[cls, event] = list(app._aggregates(cls, event))
        return iter(passes[cls, event])

    before = app.recorder.max_notification_id()
    with scanning(app):
        app._year_aggregates = once
        out = reads(app)
    assert app.recorder.max_notification_id() == before, "the reads recorded nothing"
    return out


def reached(read: dict[str, Any]) -> set[str]:
    """Which kinds of item one :func:`reads` holds (a history must reach each of :data:`REACHED`)."""
    out: set[str] = set()
    for key, value in read.items():
        if key.endswith("/queue"):
            out.update(k for k in KINDS if value[k])
        elif key.endswith("/bars"):
            out.update("bar_in_force" if b["in_force"] else "bar_proposed" for b in value)
        elif key == "bodies":
            out.update("body_outcome" if b["outcomes"] else "body_sent" for b in value)
    return out


def reads(app: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for town in TOWNS:
        for staff in ("req", "admin"):  # (approvers and operators see what requesters see)
            out[f"{town}/{staff}/queue"] = app.year_queue(Actor(town, staff))
        out[f"{town}/risks"] = app.release_risks(Actor(town, "req"))
        out[f"{town}/cases"] = app.open_cases(Actor(town, "req"))
        out[f"{town}/bars"] = app.guardian_bars(Actor(town, "req"))
        out[f"{town}/body_inbox"] = app.body_inbox(Actor(town, "req"))
    out["bodies"] = app.body_requests(Actor(SC, "req"))
    return out


def step(app: Any, rng: random.Random, people: list[str], person: Callable[[], str]) -> None:
    """One staff act (or the clock's step), chosen at random; a refusal by the app's rules is part of a history."""
    town = rng.choice(TOWNS)
    x = rng.choice(people)
    act = rng.randrange(11)
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
    elif act == 9:  # a guardian bar: proposed, put in force, its lifting proposed and approved
        bar = app.propose_guardian_bar(Actor(town, "req"), x, rng.choice([p for p in people if p != x]))
        acts = (
            lambda: app.approve_guardian_bar(Actor(town, "apr"), bar),
            lambda: app.propose_bar_lift(Actor(town, "req"), bar, "親権者の変更"),
            lambda: app.lift_guardian_bar(Actor(town, "apr"), bar),
        )
        for act_on in acts:
            if rng.random() < 0.4:
                return
            act_on()
    elif act == 10:  # a support centre asks; the municipality answers, approves and executes, or leaves it
        body = app.send_body_request(Actor(SC, "req"), town, x, rng.choice([[ND], [ND, NAR]]))
        if rng.random() < 0.7:
            rid = app.answer_body_request(Actor(town, "req"), body)
            if rng.random() < 0.7:
                app.approve_request(Actor(town, "apr"), rid)
                app.execute_request(Actor(town, "op"), rid)
    else:
        start = app.clock()
        app.clock = lambda: start + timedelta(days=rng.randrange(1, 40))
        app.year_step()
