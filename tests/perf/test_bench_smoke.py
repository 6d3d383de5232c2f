"""The benchmark runs end to end on tiny sizes and reports every figure (no timing is asserted)."""

from __future__ import annotations

import json

from tests.perf import bench


def test_the_benchmark_produces_every_figure(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    assert bench.main(["--events", "200", "--subjects", "500", "--runs", "1", "--no-postgres"]) == 0
    [saved] = list(tmp_path.glob("*.json"))
    figures = {f["figure"]: f for f in json.loads(saved.read_text())["figures"]}
    assert set(figures) == {
        "signed append, SQLite, batches of 100",
        "audit verify of the whole log",
        "projection rebuild (all projections)",
        "request-path decision p99",
    }
    assert all(f["ours"] > 0 and f["baseline"] > 0 for f in figures.values())
