"""Leak-freedom: generated histories of the seed's threat, the invariant checked after every step.

CI runs a few histories; the long job (``-m long``) runs ``FLAGLEDGER_HISTORIES`` of them (10,000 by
default). See tests/adversarial/README.md for the claim, the scope and the figures of the last long run.
"""

from __future__ import annotations

import itertools
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import FlakyStrategyDefinition
from hypothesis.stateful import run_state_machine_as_test

from ledger.runtime.bootstrap import Node, init_node
from tests.adversarial.threat import AGENCIES, LeakMachine, prepare_node
from tests.adversarial.threat_year import STATS, year_line

CI_HISTORIES = int(os.environ.get("FLAGLEDGER_CI_HISTORIES", "8"))
LONG_HISTORIES = int(os.environ.get("FLAGLEDGER_HISTORIES", "10000"))
ROTATE_EVERY = int(os.environ.get("FLAGLEDGER_ROTATE_EVERY", "500"))  # fresh nodes every N long-run histories


def fresh_node(path: Path) -> Node:
    """One node hosting A–E, staff enrolled, for the histories of a run (each brings fresh people)."""
    node = init_node(path, AGENCIES)
    prepare_node(node)
    LeakMachine.node = node
    return node


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = fresh_node(tmp_path_factory.mktemp("leak") / "node")
    yield node
    if LeakMachine.node is not None:
        LeakMachine.node.close()  # the latest node (the long run rotates them)
    LeakMachine.node = None
    del node


def run_histories(
    count: int,
    steps: int,
    report: Path | None = None,
    *,
    machine: type[LeakMachine] = LeakMachine,
    extra: Callable[[], str] = lambda: "",
    rotate: Callable[[], None] | None = None,
    segment: int = 500,
) -> None:
    """``count`` histories of up to ``steps`` steps; with ``rotate``, fresh nodes every ``segment`` histories.

    Rotation keeps a long run's speed flat: on nodes that served thousands of histories every work queue and
    counter screen of A lists the earlier histories' people too (a three-node history took 3× longer after
    1,700 histories), which only slows the check, it adds nothing it checks.
    """
    LeakMachine.histories = LeakMachine.steps = LeakMachine.armed_checks = LeakMachine.protected_histories = 0
    STATS.clear()
    LeakMachine.progress_extra = extra
    started = LeakMachine.started = time.perf_counter()
    LeakMachine.restarts = 0
    while LeakMachine.histories < count:
        target = min(count, LeakMachine.histories + segment) if rotate is not None else count
        try:
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=target - LeakMachine.histories,
                    stateful_step_count=steps,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except FlakyStrategyDefinition as exc:
            if any("shrink" in f.name for f in traceback.extract_tb(exc.__traceback__)):
                raise  # while shrinking a failure: that failure must be reported, never swallowed
            # Not a finding: hypothesis found that replaying an earlier history's choices offered different
            # rules or draws (the shared nodes grew meanwhile). Every step run so far was checked when it ran;
            # a fresh engine goes on with the histories left. A leak is an AssertionError and still fails.
            LeakMachine.restarts += 1
            if LeakMachine.restarts > 50:
                raise
            continue
        if rotate is not None and LeakMachine.histories < count:
            rotate()
    seconds = time.perf_counter() - started
    line = (
        f"histories={LeakMachine.histories} with_protection_and_flight={LeakMachine.protected_histories} "
        f"steps={LeakMachine.steps} armed_checks={LeakMachine.armed_checks} leaks=0 seconds={seconds:.0f} "
        f"engine_restarts={LeakMachine.restarts} {extra()}"
    ).strip()
    print(line)
    if report is not None:
        report.write_text(line + "\n")


def test_generated_histories_leak_nothing(shared_node: Node) -> None:
    """CI: a few histories of up to 25 steps; a leak fails with the shrunk history printed."""
    run_histories(CI_HISTORIES, 25, extra=year_line)


@pytest.mark.long
def test_ten_thousand_generated_histories_leak_nothing(shared_node: Node, tmp_path: Path) -> None:
    """The long job: FLAGLEDGER_HISTORIES histories (default 10,000) of up to 30 steps each."""
    out = os.environ.get("FLAGLEDGER_HISTORIES_REPORT")
    fresh = itertools.count(1)

    def rotate() -> None:
        assert LeakMachine.node is not None
        LeakMachine.node.close()
        fresh_node(tmp_path / f"node{next(fresh)}")

    run_histories(LONG_HISTORIES, 30, Path(out) if out else None, extra=year_line, rotate=rotate, segment=ROTATE_EVERY)


def test_the_year_rules_reach_their_checks(shared_node: Node) -> None:
    """One scripted history through the year's rules, each step checked by the model's invariants as generated
    histories are: K's release refused before B holds, B's emergency flag escalated then co-approved, the term
    lapsed, a query about K held. A model whose year rules checked nothing would pass the generated runs too.
    Threat: the perpetrator through the child, an insider releasing or letting lapse alone."""
    STATS.clear()
    m = LeakMachine()
    checks = (m.flags_held_exactly_where_the_model_says, m.no_view_y_can_reach_names_where_x_lives)
    steps = [
        lambda: m.spouses_in_a_then_x_flees(perpetrators=1, proxy=False, early="protect", to="131024", child=True),
        lambda: m.release_companion(pick=0, risk=False),  # K moved to B, B does not hold K: refused
        lambda: m.emergency_flags(at="residence"),  # B, at night
        lambda: m.term_applied(pick=1, back=400),
        lambda: m.time_passes(days=8, hours=0),  # past the next business day: escalated, flags still held
        lambda: m.co_approve_emergency(pick=0),
        lambda: m.term_extended_or_lapsed(pick=0, lapse=True),
        lambda: m.attach_companion(pick=0),  # K at B, then A asks where K lives: held
        lambda: m.release_companion(pick=0, risk=False),  # A lets K go: B holds now
    ]
    for step in steps:
        step()
        for check in checks:
            check()
    assert m.k_held == {"131024"} and m.terms["131024"][1] == "lapsed"
    for what in ("companion release refused", "companion release done", "escalated", "co-approved", "lapsed"):
        assert STATS[what] >= 1, f"{what}: {dict(STATS)}"
    assert STATS["query about K, held True"] >= 1, dict(STATS)
