"""Two processes saving at once (an API server and a CLI command, say) each seal their batches over the log
exactly as it stood before them: the signed log heads of every batch verify, on SQLite and PostgreSQL.

Threat: **an insider** relying on a race — if a batch could sign a log head other than the one it follows,
`audit verify` would have to tolerate mismatches, and a deletion could hide among them.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ledger.audit.verify import verify_log
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B
from tests.support import store

EACH = 150


def test_two_processes_saving_at_once_leave_a_log_whose_batch_heads_all_verify(
    make_node: Callable[..., Node], backend: str | None, tmp_path: Path
) -> None:
    node = make_node((AgencySpec(B, "B市", "municipality"),), database_url=backend)
    before = node.app.max_position()
    root = Path(__file__).resolve().parents[2]
    savers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.saver", str(node.config.data_dir), B, str(EACH), tag, str(tmp_path)],
            cwd=root,
        )
        for tag in ("api", "cli")
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{t}").exists() for t in ("api", "cli")) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()  # both opened the node: start together
    assert [p.wait(timeout=300) for p in savers] == [0, 0]
    rows = [r for r in store.rows(node) if r[0] > before]
    assert len(rows) == 2 * EACH
    # the two really raced: their batches alternate in the log many times
    mapper = node.app.signed_mapper  # (an access record is sealed under its subject's data key: decoded, not grepped)
    whose = [mapper.decode(mapper.open(r[4])).what == "api" for r in rows]
    switches = sum(1 for a, b in itertools.pairwise(whose) if a != b)
    assert switches >= 10, switches
    report = verify_log(node.app)
    assert report.ok, report.first_bad
    assert report.own_batches_checked == report.events == node.app.max_position()
    head = node.app.recorder.read_head()  # type: ignore[attr-defined]
    assert head is not None and head.size == report.tree_size
