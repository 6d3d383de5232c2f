"""The hub topology's benchmark group (``--only hub``) runs end to end on tiny sizes and reports every figure
with its baseline (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from tests.perf import bench, hub_national

pytestmark = pytest.mark.kafka


def test_the_hub_group_produces_every_figure(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    args = ["--only", "hub", "--runs", "1", "--hub-samples", "3", "--hub-events", "60", "--no-postgres"]
    args += ["--national-inboxes", "5", "--national-seconds", "1", "--national-rate", "40"]
    assert bench.main(args) == 0
    [saved] = list(tmp_path.glob("*.json"))
    result = json.loads(saved.read_text())
    figures = {f["figure"]: f for f in result["figures"]}
    national = "national simulation, 5 inboxes, 40/s for 1 s: hub lag p99 (s)"
    assert set(figures) == {
        "hub propagation B → hub → A p99 (ms)",
        "hub ingest, SQLite (open+verify+sequence+file+commit)",
        national,
    }
    assert all(f["ours"] > 0 for f in figures.values())
    assert all(f["baseline"] > 0 for f in figures.values() if f["baseline"] is not None)
    sim = figures[national]["national"]
    # every query sent was applied by the hub and its routed query found on the provider's inbox topic
    assert sim["queries_sent"] == 40 and sim["applied"] == 40
    assert sim["inboxes_behind"] == 0 and sim["routed_missing"] == 0
    assert "load_average_at_start" in result["machine"]


def test_the_national_rate_is_ten_times_the_office_hour_peak_of_the_deploy_arithmetic() -> None:
    # deploy/README.md: 30 M queries × 2 events a year over 245 days × 8 h ≈ 8.5 events/s; issue #23's peak ≈ 85
    assert round(hub_national.office_hour_peak()) == 85
    assert hub_national.PEAK_EVENTS_S == 850
