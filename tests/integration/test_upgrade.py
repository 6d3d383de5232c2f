"""An upgrade of data directories made by the commit before the migrations (7b68d94), with that commit's code,
and by an older one whose ``ingest_pending`` had another key (0e2db11).

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
from sqlalchemy import MetaData, inspect, select

from consumers.ingest import PendingStore, ingest
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import open_node
from ledger.runtime.config import NodeConfig
from ledger.runtime.migrations import HEAD, current, upgrade
from ledger.runtime.tables import parked_messages, pending_events, relay_position
from projections.base import create_engine
from projections.schema import projection_schema
from projections.view_reads import view_cipher
from tests.integration.upgrade_source import VIEWS_JSON, dump, view_tables

OLD = "7b68d94"  # the last commit before ledger/runtime/migrations and the projection fingerprints
# a commit whose ingest_pending is keyed by (stream, version) — before 27a5304 was merged — yet whose data
# directories today's code can open (keyed stream ids, envelope v2): revision 0002 converts its databases
OLDER = "0e2db11"
REPO = Path(__file__).resolve().parents[2]


def old_tree(tmp_path: Path, commit: str) -> Path:
    if (
        subprocess.run(
            ["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip(
            f"this clone does not hold commit {commit} (a shallow clone?): fetch its history to run the upgrade test"
        )
    tree = tmp_path / "old-code"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def populate_with_old_code(tmp_path: Path, url: str | None, commit: str) -> Path:
    tree = old_tree(tmp_path, commit)
    root = tmp_path / "data"
    root.mkdir()
    made = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("upgrade_source.py")), str(root), url or ""],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert json.loads(made.stdout.splitlines()[-1])["code"].startswith(str(tree)), "the old code did not run"
    return root


def operational(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the operational tables as they are in the database (an older one's columns, too)."""
    names = [t.name for t in (pending_events, parked_messages, relay_position)]
    meta = MetaData()
    meta.reflect(engine, only=names)
    with engine.connect() as conn:
        return {name: sorted(tuple(r) for r in conn.execute(select(meta.tables[name]))) for name in names}


def audit_verify(data_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli.main", "--data-dir", str(data_dir), "audit", "verify", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


@pytest.mark.parametrize("commit", [OLD, OLDER])
def test_a_data_directory_of_an_earlier_commit_upgrades_keeping_everything(
    tmp_path: Path, backend: str | None, commit: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = populate_with_old_code(tmp_path, backend, commit)
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
            # the views the old code had equal what it projected; views added since (e.g. issue 18's link tables)
            # have no old counterpart: they must equal a rebuild, as every view must
            live = dump(node.engine, view_tables(), view_cipher(node))  # sealed cells opened
            assert {t: live[t] for t in before[name]} == before[name], f"{name}: views after the upgrade"
            assert set(before[name]) <= set(live)
            if name == "b":  # its direct link, one clerk's act in the old code, still replays as a link
                ((_, _, _, active, _, _),) = live["pseudonym_links"]  # (stream, old, new, active, position, at)
                assert active == "True"
            node.projector.rebuild()
            assert dump(node.engine, view_tables(), view_cipher(node)) == live, f"{name}: views after a rebuild"
            # opened again: nothing left to migrate or rebuild
            assert upgrade(node.engine) == HEAD and node.projector.sync_schema() == []
        messages = [r.getMessage() for r in caplog.records]
        assert any("migrating the node's operational tables from nothing to " + HEAD in m for m in messages)
        assert any(m.startswith("rebuilding ") and "/" in m for m in messages), "the rebuild's progress is logged"
        migrated = operational(a.engine)
        assert {k: v for k, v in migrated.items() if k != "ingest_pending"} == {
            k: v for k, v in kept.items() if k != "ingest_pending"
        }
        # every held event kept, each under its envelope's leaf hash (the older code had no leaf column)
        # (stream, version, leaf, envelope, held_at: none for what waited before 0004)
        assert sorted((s, v, e) for s, v, _, e, _ in migrated["ingest_pending"]) == sorted(
            (r[0], r[1], r[-1]) for r in kept["ingest_pending"]
        )
        assert all(leaf == Envelope.from_bytes(env).hash_hex for _, _, leaf, env, _ in migrated["ingest_pending"])

        late = (root / "late.bin").read_bytes()
        outcome = ingest(a.app, late, PendingStore(a.app, a.engine))
        assert outcome.kind == "applied" and outcome.applied == 1 + len(kept["ingest_pending"])
        a.projector.catch_up()
    finally:
        a.close()
        b.close()
    listed = []
    for name in ("a", "b"):
        report = audit_verify(root / name)
        assert report["ok"] is True
        listed += report.get("before_staff_signing", [])
    # the old flag requests and flag changes carry no staff signatures: accepted, and each listed as such
    # (docs/staff-signing.md), never passed silently
    assert listed and all("before staff signing" in entry for entry in listed)
    assert any("Protection.FlagsSet" in entry for entry in listed)
