"""The holdings benchmark runs on tiny sizes and reports both figures (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.perf import holdings_bench


def test_the_holdings_benchmark_reports_both_reads(tmp_path: Path) -> None:
    out = tmp_path / "holdings.json"
    assert holdings_bench.main(["--holdings", "120", "--others", "40", "--runs", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [f["figure"] for f in result["figures"]] == [
        "the holder's codes, one query per holding (s)",
        "the holder's codes, one query (s)",
    ]
    assert all(f["seconds"] > 0 for f in result["figures"]) and result["ratio_old_over_new"] > 0
