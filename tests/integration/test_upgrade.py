"""An upgrade of data directories made by the commit before the migrations (7b68d94), with that commit's code.

Threat: the administrator upgrading a node — an upgrade that failed on a changed table, lost events held behind
a gap, a parked forgery or the relay's position, or left views that differ from the log would leave a victim's
flags unenforced or unexplained. The old code runs from a plain copy of its tree (``git archive``, so the
repository gains no worktree) in a subprocess with ``PYTHONPATH`` pointing there
(``tests/integration/upgrade_source.py``); the current code then opens what it made: the operational tables are
migrated to head and kept, every projection is rebuilt at open (the old databases carry no fingerprint) and
equals both what the old code projected and a rebuild, ``audit verify`` passes, and the held events are still
released by the event they waited for.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from consumers.ingest import PendingStore, ingest
from consumers.migrations import HEAD, current, upgrade
from consumers.tables import parked_messages, pending_events, relay_position
from ledger.bootstrap import open_node
from ledger.config import NodeConfig
from ledger.envelope import Envelope
from projections.base import create_engine
from projections.schema import projection_schema
from tests.integration.upgrade_source import VIEWS_JSON, dump, view_tables

OLD = "7b68d94"  # the last commit before consumers/migrations and the projection fingerprints
REPO = Path(__file__).resolve().parents[2]


def old_tree(tmp_path: Path) -> Path:
    if subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{OLD}^{{commit}}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"this clone does not hold commit {OLD} (a shallow clone?): fetch its history to run the "
                    "upgrade test")
    tree = tmp_path / "old-code"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", OLD], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def populate_with_old_code(tmp_path: Path, url: str | None) -> Path:
    tree = old_tree(tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    made = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("upgrade_source.py")), str(root), url or ""],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert json.loads(made.stdout.splitlines()[-1])["code"].startswith(str(tree)), "the old code did not run"
    return root


def operational(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                for t in (pending_events, parked_messages, relay_position)}


def audit_verify(data_dir: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "ledger.cli.main", "--data-dir", str(data_dir), "audit", "verify",
                           "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def test_a_data_directory_of_the_previous_commit_upgrades_keeping_everything(
    tmp_path: Path, backend: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    root = populate_with_old_code(tmp_path, backend)
    before = json.loads((root / VIEWS_JSON).read_text())
    engine = create_engine(NodeConfig.load(root / "a").views_url())
    with engine.connect() as conn:
        assert current(conn) is None and not inspect(conn).has_table(projection_schema.name)
    kept = operational(engine)
    engine.dispose()
    assert kept["ingest_pending"] and kept["parked_messages"] and kept["relay_position"]

    # B's node: `audit verify` is the first command of the new code; it migrates and changes no view
    assert audit_verify(root / "b")["ok"] is True
    caplog.set_level(logging.INFO)
    a, b = open_node(root / "a"), open_node(root / "b")
    try:
        for node, name in ((a, "a"), (b, "b")):
            with node.engine.connect() as conn:
                assert current(conn) == HEAD
                stored = dict(conn.execute(select(projection_schema.c.name, projection_schema.c.fingerprint)).all())
            assert stored == node.projector.fingerprints()
            assert dump(node.engine, view_tables()) == before[name], f"{name}: views after the upgrade"
            node.projector.rebuild()
            assert dump(node.engine, view_tables()) == before[name], f"{name}: views after a rebuild"
            # opened again: nothing left to migrate or rebuild
            assert upgrade(node.engine) == HEAD and node.projector.sync_schema() == []
        messages = [r.getMessage() for r in caplog.records]
        assert any("migrating the node's operational tables from nothing to " + HEAD in m for m in messages)
        assert any(m.startswith("rebuilding ") and "/" in m for m in messages), "the rebuild's progress is logged"
        assert operational(a.engine) == kept
        assert all(leaf == Envelope.from_bytes(env).hash_hex for _, _, leaf, env in kept["ingest_pending"])

        late = (root / "late.bin").read_bytes()
        outcome = ingest(a.app, late, PendingStore(a.app, a.engine))
        assert outcome.kind == "applied" and outcome.applied == 1 + len(kept["ingest_pending"])
        a.projector.catch_up()
    finally:
        a.close()
        b.close()
    for name in ("a", "b"):
        assert audit_verify(root / name)["ok"] is True
