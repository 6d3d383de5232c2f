"""The API under load, against a baseline in the same run: ``python -m tests.perf.api_load``.

``flagledger serve`` from this checkout and from a baseline commit (``--baseline``, default the commit before
issue 16's load work) take turns serving the same mix of reads and writes from N keep-alive clients
(tests/support/load.py) for ``--seconds``; the table gives requests per second, p50 and p99 for each, and the
ratio ours/baseline. A run where the baseline stopped answering (the lock-up at 41 clients) is shown as such.
Results are saved as JSON under tests/perf/results/. The exit code says only whether it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.load import LoadResult, make_cast, run_load, serving
from tests.support.postgres import temp_database

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[2]
BASELINE = "1d14162"  # main before the load work of issue 16


def _checkout(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _one(source: Path | None, clients: int, seconds: float, database: str, timeout: float) -> LoadResult:
    with tempfile.TemporaryDirectory() as tmp:
        if database == "postgres":
            with temp_database("fl_perf") as url:
                cast = make_cast(Path(tmp) / "node", url)
                with serving(cast, source=source) as server:
                    return asyncio.run(run_load(server.base, cast, clients=clients, seconds=seconds, timeout=timeout))
        cast = make_cast(Path(tmp) / "node")
        with serving(cast, source=source) as server:
            return asyncio.run(run_load(server.base, cast, clients=clients, seconds=seconds, timeout=timeout))


def _figure(results: list[LoadResult]) -> dict[str, Any]:
    answered = [r for r in results if r.timeouts == 0 and not r.bodies_5xx]
    return {
        "runs": [r.summary() for r in results],
        "locked_up": len(answered) < len(results),
        "per_second": statistics.median(r.throughput for r in answered) if answered else 0.0,
        "p50_ms": statistics.median(1000 * r.percentile(50) for r in answered) if answered else None,
        "p99_ms": statistics.median(1000 * r.percentile(99) for r in answered) if answered else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clients", default="40,200", help="client counts, comma-separated (default 40,200)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=2, help="runs per figure, ours and baseline alternating")
    p.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--baseline", default=BASELINE, help="git ref of the baseline (default %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, help="a client's wait for one answer, seconds")
    args = p.parse_args()
    table: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = _checkout(args.baseline, Path(tmp))
        for clients in (int(c) for c in args.clients.split(",")):
            ours: list[LoadResult] = []
            theirs: list[LoadResult] = []
            for _ in range(args.runs):
                ours.append(_one(None, clients, args.seconds, args.database, args.timeout))
                theirs.append(_one(base, clients, args.seconds, args.database, args.timeout))
            mine, baseline = _figure(ours), _figure(theirs)
            row = {"ours": mine, "baseline": baseline}
            if not baseline["locked_up"] and baseline["per_second"]:
                row["throughput_ratio"] = mine["per_second"] / baseline["per_second"]
                row["p99_ratio"] = mine["p99_ms"] / baseline["p99_ms"]
            table[f"{clients} clients"] = row
            print(
                f"{clients:>4} clients  ours: {mine['per_second']:.0f}/s p99 {mine['p99_ms']:.0f} ms   baseline: "
                + (
                    "locked up (no answers within the client timeout)"
                    if baseline["locked_up"]
                    else f"{baseline['per_second']:.0f}/s p99 {baseline['p99_ms']:.0f} ms   "
                    f"throughput {row['throughput_ratio']:.2f}x, p99 {row['p99_ratio']:.2f}x"
                ),
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-api-load-{args.database}.json"
    out.write_text(
        json.dumps(
            {
                "figure": "API load",
                "database": args.database,
                "baseline": args.baseline,
                "seconds": args.seconds,
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
                "table": table,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"saved {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
