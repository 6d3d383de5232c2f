"""A long replay runs in bounded memory: the peak does not grow with the log (``-m long``).

.venv/bin/python -m pytest -q -m long tests/integration/test_audit_replay_memory.py
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.audit.replay import replay
from ledger.audit.replay_target import open_target
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B


def _grow(node: Node, people: list[str], n: int) -> None:
    for i in range(n):
        node.app.request_provision(
            Actor(A, "counter"),
            B,
            people[i % len(people)],
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
        )


def _peak(node: Node, target: Path) -> int:
    engine = open_target(f"sqlite:///{target}")
    tracemalloc.start()
    try:
        summary = replay(node.app, engine, as_of=datetime.now(UTC), page=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        engine.dispose()
    assert summary.events_applied == node.app.max_position()
    return peak


@pytest.mark.long
def test_the_replay_peak_memory_does_not_grow_with_the_log(sqlite_node: Node, tmp_path: Path, person) -> None:
    people = [person() for _ in range(50)]
    _grow(sqlite_node, people, 500)
    small = _peak(sqlite_node, tmp_path / "small.sqlite")
    _grow(sqlite_node, people, 2000)  # five times the log
    large = _peak(sqlite_node, tmp_path / "large.sqlite")
    assert large < small * 1.5, (small, large)
