"""The benchmark runs end to end on tiny sizes and reports every figure (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from tests.perf import bench

pytestmark = pytest.mark.kafka


def test_the_benchmark_produces_every_figure(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    args = [
        "--events",
        "200",
        "--log-events",
        "300",
        "--subjects",
        "500",
        "--kafka-events",
        "100",
        "--samples",
        "3",
        "--records",
        "3000",
        "--memory-events",
        "400",
        "--runs",
        "1",
        "--no-postgres",
        "--only",
        "append,log,request,kafka,portal,memory",  # the hub group has its own smoke test
    ]
    assert bench.main(args) == 0
    [saved] = list(tmp_path.glob("*.json"))
    result = json.loads(saved.read_text())
    figures = {f["figure"]: f for f in result["figures"]}
    assert set(figures) == {
        "signed append, SQLite, batches of 100",
        "signed append, SQLite, persons already keyed",
        "audit verify of the whole log",
        "projection rebuild (all projections)",
        "rebuild in place, as before #23 (raw decode)",
        "request-path decision p99 (µs)",
        "ingest from Kafka (consume+verify+append+project)",
        "nationwide propagation B → A p99 (ms)",
        "portal view, one subject, 3,000 records p99 (ms)",
        "peak RSS, rebuild of 400 events (MB)",
        "peak RSS, audit of 400 events (MB)",
        "peak RSS, audit (heads capped at 10) of 400 events (MB)",
    }
    assert figures["peak RSS, audit (heads capped at 10) of 400 events (MB)"]["rss"]["heads_spilled"] > 0
    assert all(f["ours"] > 0 for f in figures.values())
    assert all(f["baseline"] > 0 for f in figures.values() if f["baseline"] is not None)
    assert result["machine"]["cpus"] and "load_average_at_start" in result["machine"]


def test_a_run_stopped_late_keeps_the_figures_it_has(tmp_path, monkeypatch) -> None:
    # a kept memory log of another size stops the run at the memory figure, after the append figure was taken
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    kept = tmp_path / "log"
    kept.mkdir()
    (kept / "flagledger-bench-events").write_text("123")
    with pytest.raises(SystemExit, match="holds a log of 123 events"):
        bench.main(
            [
                "--events",
                "200",
                "--runs",
                "1",
                "--only",
                "append,memory",
                "--memory-events",
                "400",
                "--memory-log",
                str(kept),
                "--no-postgres",
            ]
        )
    [saved] = list((tmp_path / "results").glob("*.json"))
    result = json.loads(saved.read_text())
    assert [f["figure"] for f in result["figures"]] == [
        "signed append, SQLite, batches of 100",
        "signed append, SQLite, persons already keyed",
    ]
    assert "holds a log of 123 events" in result["incomplete"]
