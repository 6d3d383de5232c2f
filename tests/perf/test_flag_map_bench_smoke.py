"""The flag map's micro-benchmark runs on tiny sizes and reports every figure (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.perf import flag_map_bench


def test_the_flag_map_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "flag_map.json"
    assert flag_map_bench.main(["--keys", "300", "--ops", "20", "--runs", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [f["figure"] for f in result["figures"]] == [
        "update one key and read the root",
        "prove a member",
        "prove a non-member",
        "verify a member's proof",
        "verify a non-member's proof",
    ]
    assert all(f["us"] > 0 for f in result["figures"]) and result["siblings_per_proof_median"] <= 256
