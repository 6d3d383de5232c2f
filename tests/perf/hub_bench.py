"""The ``hub`` group of ``python -m tests.perf.bench`` (``--only hub``): the hub topology's figures, each with its
baseline measured in the same run (tests/perf/hub_figures.py, tests/perf/hub_national.py; docs/performance.md)."""

from __future__ import annotations

import argparse
import statistics
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.perf import hub_figures, hub_national

Row = Callable[..., None]
Figure = Callable[[str, Callable[[], float], Callable[[], float], str, str], None]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--hub-samples", type=int, default=50, help="flags propagated B → hub → A per run")
    ap.add_argument("--hub-events", type=int, default=2_000, help="messages the hub ingests per run")
    ap.add_argument("--national-inboxes", type=int, default=None, help="agency inboxes (default 200; --long 1,800)")
    ap.add_argument("--national-seconds", type=float, default=None, help="seconds of load (default 10; --long 600)")
    ap.add_argument(
        "--national-rate",
        type=float,
        default=hub_national.PEAK_EVENTS_S,
        help=f"queries/s the hub is sent (default 10× the office-hour peak, {hub_national.PEAK_EVENTS_S})",
    )
    ap.add_argument("--no-national", action="store_true", help="leave out the national simulation")


def run(args: argparse.Namespace, tmp: Path, row: Row, figure: Figure) -> None:
    """Every hub figure; ``--hub-samples 0`` leaves out propagation, ``--hub-events 0`` ingest (for a national run
    alone)."""
    from tests.support.tansu import broker

    inboxes = args.national_inboxes or (1_800 if args.long else 200)
    seconds = args.national_seconds or (600.0 if args.long else 10.0)
    with broker() as address:
        if args.hub_samples:
            _propagation(args, tmp, address, row)
        if args.hub_events:
            _ingest(args, tmp, address, figure)
        if args.no_national:
            return
        result = hub_national.national(tmp, address, inboxes, seconds, args.national_rate)
        lag = result["lag_p99_s"] if result["lag_p99_s"] is not None else float("inf")
        row(
            f"national simulation, {inboxes:,} inboxes, {args.national_rate:.0f}/s for {seconds:.0f} s: "
            "hub lag p99 (s)",
            lag,
            None,
            "s",
            "p99 ≤ 1 s; no inbox behind",
            national=result,
        )


def _propagation(args: argparse.Namespace, tmp: Path, address: str, row: Row) -> None:
    # alternating as bench.figure does; the baseline's record is the size of the message A was handed
    got, base = [], []
    for _ in range(args.runs):
        got.append(hub_figures.propagation_p99(tmp, address, args.hub_samples))
        base.append(hub_figures.sealed_hop_p99(address, args.hub_samples, got[-1].received_bytes))
    row(
        "hub propagation B → hub → A p99 (ms)",
        statistics.median(g.p99_ms for g in got),
        statistics.median(base),
        "ms",
        "≤ 2× and p99 ≤ 50 ms",
        runs={"ours": [round(g.p99_ms, 1) for g in got], "baseline": [round(b, 1) for b in base]},
        p50_ms=[round(g.p50_ms, 1) for g in got],
        hops_p99_ms={
            "b_to_hub_filed": [round(g.to_hub_p99_ms, 1) for g in got],
            "hub_filed_to_a_held": [round(g.to_a_p99_ms, 1) for g in got],
        },
        largest_record_bytes={"to_hub": got[-1].sent_bytes, "to_a": got[-1].received_bytes},
    )


def _ingest(args: argparse.Namespace, tmp: Path, address: str, figure: Figure) -> None:
    sqlite_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite"}
    figure(
        "hub ingest, SQLite (open+verify+sequence+file+commit)",
        lambda: hub_figures.hub_ingest(address, f"sqlite:///{tmp / uuid.uuid4().hex}-hub.sqlite", args.hub_events),
        lambda: hub_figures.plain_ingest(
            address, {**sqlite_env, "SQLITE_DBNAME": str(tmp / f"{uuid.uuid4().hex}.db")}, args.hub_events
        ),
        "events/s",
        "≥ 0.9× and ≥ 10k/s",
    )
    if not args.no_postgres:
        _postgres_ingest(args, address, figure)


def _postgres_ingest(args: argparse.Namespace, address: str, figure: Figure) -> None:
    from urllib.parse import urlparse

    from tests.support.postgres import temp_database

    def ours() -> float:
        with temp_database() as url:
            return hub_figures.hub_ingest(address, url, args.hub_events)

    def base() -> float:
        with temp_database() as url:
            u = urlparse(url)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": u.path.lstrip("/"),
                "POSTGRES_HOST": "127.0.0.1",
                "POSTGRES_PORT": "5432",
                "POSTGRES_USER": "postgres",
                "POSTGRES_PASSWORD": "",
                "CREATE_TABLE": "y",
            }
            return hub_figures.plain_ingest(address, env, args.hub_events)

    figure("hub ingest, PostgreSQL (open+verify+sequence+file+commit)", ours, base, "events/s", "≥ 0.9× and ≥ 10k/s")
