"""Events enter the store through one door (``ledger/log/store.py``), never through a recorder directly.

Threat: none directly — a second way in is how a write once skipped the head memo or the key registry update
(ingest had its own insert, the batched ingest another). The recorders define ``insert_events``; the door is
the only code that calls it. Tests that play an insider writing straight into a store call it on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDERS = {"ledger/log/pg_recorder.py", "ledger/log/sqlite_recorder.py"}


def test_only_the_door_calls_insert_events() -> None:
    callers: list[str] = []
    for package in ("ledger", "consumers", "projections", "deploy"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Attribute) and node.attr in ("insert_events", "_insert_events"):
                    callers.append(rel)
    assert callers, "the scan found no call at all: it is not looking where the code is"
    assert set(callers) - RECORDERS == {"ledger/log/store.py"}, callers
