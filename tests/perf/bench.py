"""Benchmarks with same-run baselines: ``python -m tests.perf.bench [--events N] [--runs K] [--only NAME]``.

Each figure runs K times; the table shows medians and the ratio to a baseline measured in the same run on the
same machine. Results are saved as JSON in tests/perf/results/. The exit code says only whether it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.audit.workers import MIN_EVENTS
from ledger.domain.identity import AccessRecord
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.perf import hub_bench
from tests.support.postgres import temp_database

RESULTS = Path(__file__).parent / "results"
B = "131024"


class PlainRecord(Aggregate):
    """The baseline's equivalent of AccessRecord: one creation event with the same fields."""

    @event("ProtectedDetailsRead")
    def __init__(self, agency: str, staff: str, subject: str, what: str, purpose: str) -> None:
        self.agency = agency


def _records(n: int) -> list[dict[str, str]]:
    return [
        {"agency": B, "staff": "aud", "subject": f"p{uuid4().hex}", "what": "holders", "purpose": "監査"}
        for _ in range(n)
    ]


def _node(tmp: Path, database_url: str | None, name: str | None = None) -> Node:
    node = init_node(tmp / (name or uuid4().hex), [AgencySpec(B, "B市", "municipality")], database_url=database_url)
    node.app.enroll_staff(Actor(B, "admin"), "aud", "aud", ["auditor"])
    return node


def signed_append(node: Node, events: int) -> float:
    rows = _records(events)
    t = time.perf_counter()
    for i in range(0, events, 100):
        node.app.save_as(B, *(AccessRecord(**r) for r in rows[i : i + 100]))
    return events / (time.perf_counter() - t)


def signed_append_known(node: Node, events: int) -> float:
    """As :func:`signed_append`, about persons who already have a data key (made before the clock starts, as their
    case's opening made it): reads of known persons' details, the node's usual write. ``signed_append`` makes a
    key for every event's person, the worst case (a listing of persons never seen before)."""
    people = [f"p{uuid4().hex}" for _ in range(max(100, events // 10))]
    dk = node.app.signed_mapper.data_keys
    assert dk is not None
    dk.for_subjects(people)
    rows = _records(events)
    for i, r in enumerate(rows):
        r["subject"] = people[i % len(people)]
    t = time.perf_counter()
    for i in range(0, events, 100):
        node.app.save_as(B, *(AccessRecord(**r) for r in rows[i : i + 100]))
    return events / (time.perf_counter() - t)


def plain_append(env: dict[str, str], events: int) -> float:
    app: Application[Any] = Application(env=env)
    rows = _records(events)
    t = time.perf_counter()
    for i in range(0, events, 100):
        app.save(*(PlainRecord(**r) for r in rows[i : i + 100]))
    rate = events / (time.perf_counter() - t)
    app.close()
    return rate


def raw_decode(node: Node) -> float:
    app = node.app
    mapper = app.signed_mapper
    n, start, t = 0, 1, time.perf_counter()
    while True:
        page = app.recorder.select_notifications(start=start, limit=1000)
        for row in page:
            raw = mapper.cipher.decrypt(row.state) if mapper.cipher else row.state
            json.loads(raw[raw.index(b"{") : raw.index(b"}") + 1])
            n += 1
        if len(page) < 1000:
            break
        start = page[-1].id + 1
    return n / (time.perf_counter() - t)


def audit_verify(node: Node) -> float:
    t = time.perf_counter()
    report = verify_log(node.app)
    assert report.ok
    return report.events / (time.perf_counter() - t)


def rebuild(node: Node) -> float:
    t = time.perf_counter()
    node.projector.rebuild()
    return node.app.max_position() / (time.perf_counter() - t)


def rebuild_in_place(node: Node) -> float:
    """The rebuild before issue #23, for comparison in the same run: the live tables emptied, then caught up
    page by page by the live path (durable commits into indexed tables)."""
    from projections.base import bulk_writes

    projector = node.projector
    t = time.perf_counter()
    projector.reset()
    with projector.engine.connect() as conn, bulk_writes(conn):
        projector._catch_up(conn, None, None)
    return node.app.max_position() / (time.perf_counter() - t)


def request_path(node: Node, subjects: int) -> tuple[float, float]:
    """p99 (µs) of the request path's decision read (the verified state, its look at the log's last position
    included) vs a raw sqlite3 point lookup of the old views table, with `subjects` protected people."""
    from types import SimpleNamespace

    from projections.flag_state import national_flags

    people = [f"p{i:032x}" for i in range(subjects)]
    with node.engine.begin() as conn:  # the baseline's rows
        conn.execute(
            national_flags.insert(),
            [{"person": p, "flag": "NO_AUTO_RESPONSE", "agency": B, "since": "2026-01-01"} for p in people],
        )
    # the decision's state filled through its own fold, as if each person's FlagsSet had been read from the log
    # (signing 200k events would measure signing); the read is the same whichever way the state was filled
    header = SimpleNamespace(topic="ledger.domain.flags:Protection.FlagsSet", origin=B, time="2026-01-01T00:00:00Z")
    for p in people:
        node.state.apply(SimpleNamespace(header=header), SimpleNamespace(subject=p, flags=["NO_AUTO_RESPONSE"]))  # type: ignore[arg-type]
    probes = random.Random(7).choices(people, k=5000)
    decide = node.app.flag_state
    assert decide is not None
    lat = []
    for p in probes:
        t = time.perf_counter_ns()
        decide.flags_for(p)
        lat.append(time.perf_counter_ns() - t)
    db = sqlite3.connect(node.config.data_dir / "views.sqlite")
    raw = []
    for p in probes:
        t = time.perf_counter_ns()
        db.execute("SELECT flag, agency FROM national_flags WHERE person = ?", (p,)).fetchall()
        raw.append(time.perf_counter_ns() - t)
    db.close()

    def p99(xs: list[int]) -> float:
        return sorted(xs)[int(len(xs) * 0.99)] / 1000

    return p99(lat), p99(raw)


GROUPS = ("append", "log", "request", "kafka", "portal", "memory", "postgres", "hub")


def machine(load: tuple[float, float, float]) -> dict[str, Any]:
    import psutil

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in load],
        "system": platform.platform(),
    }


def memory_log(tmp: Path, keep: Path | None, events: int) -> Path:
    """The data directory of a signed log of ``events`` events: built now, or reused from ``keep``."""
    from tests.perf.scale_figures import build_signed_log

    marker = keep / "flagledger-bench-events" if keep is not None else None
    if keep is not None and marker is not None and marker.exists():
        built = int(marker.read_text())
        if built != events:
            raise SystemExit(
                f"--memory-log {keep} holds a log of {built:,} events, not {events:,}: "
                f"pass --memory-events {built} or another directory"
            )
        print(f"  (reusing the signed log of {built:,} events in {keep})", flush=True)
        return keep / "node"
    mem = _node(keep if keep is not None else tmp, None, name="node" if keep is not None else None)
    t = time.perf_counter()
    build_signed_log(mem, events, progress=True)
    print(f"  (signed log of {events:,} events built in {time.perf_counter() - t:.0f} s)", flush=True)
    data_dir = mem.config.data_dir
    mem.close()
    if marker is not None:
        marker.write_text(str(events))
    return data_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.bench")
    ap.add_argument("--events", type=int, default=10_000, help="events per append run")
    ap.add_argument(
        "--log-events",
        type=int,
        default=200_000,
        help=f"events in the log that is audited and rebuilt (the audit starts worker processes from {MIN_EVENTS:,})",
    )
    ap.add_argument("--subjects", type=int, default=200_000, help="protected people for the request path")
    ap.add_argument("--kafka-events", type=int, default=3_000, help="events ingested from Kafka per run")
    ap.add_argument("--samples", type=int, default=50, help="flags propagated B → A per run")
    ap.add_argument("--records", type=int, default=1_000_000, help="provision records stored for the portal view")
    ap.add_argument("--memory-events", type=int, default=50_000, help="signed log size for the memory figure")
    ap.add_argument(
        "--memory-log",
        type=Path,
        default=None,
        help="keep the memory figure's signed log in this directory and reuse it when run again "
        "(building 10M events takes most of the long mode)",
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="10M portal records and a 10M-event log (hours)")
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    ap.add_argument("--no-postgres", action="store_true")
    hub_bench.add_arguments(ap)  # the hub topology's figures (--only hub)
    args = ap.parse_args(argv)
    if args.long:
        args.records, args.memory_events = 10_000_000, 10_000_000
    only = set(args.only.split(",")) - ({"postgres"} if args.no_postgres else set())
    tmp = Path(tempfile.mkdtemp(prefix="flagledger-bench-"))
    table: list[dict[str, Any]] = []
    started, loadavg = time.perf_counter(), os.getloadavg()  # other jobs share this machine: say how busy it was

    def row(name: str, ours: float, base: float | None, unit: str, target: str, **extra: Any) -> None:
        ratio = round(ours / base, 3) if base else None
        table.append(
            {
                "figure": name,
                "ours": round(ours, 3),
                "baseline": None if base is None else round(base, 3),
                "ratio": ratio,
                "unit": unit,
                "target": target,
                **extra,
            }
        )
        b = f"{base:12.1f}" if base is not None else f"{'—':>12s}"
        r = f"{ratio:7.2f}×" if ratio is not None else f"{'':8s}"
        print(f"{name:48s} {ours:12.1f} {b} {r}  {unit:10s} target {target}", flush=True)

    def figure(name: str, ours: Callable[[], float], base: Callable[[], float], unit: str, target: str) -> None:
        # alternate ours and baseline so a change of machine load hits both alike
        os_, bs = [], []
        for _ in range(args.runs):
            os_.append(ours())
            bs.append(base())
        row(
            name,
            statistics.median(os_),
            statistics.median(bs),
            unit,
            target,
            runs={"ours": [round(x, 1) for x in os_], "baseline": [round(x, 1) for x in bs]},
        )

    try:
        print(f"{'figure':48s} {'ours':>12s} {'baseline':>12s} {'ratio':>8s}", flush=True)
        node = _node(tmp, None)
        sqlite_env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
            "CIPHER_KEY": node.keys.cipher_key(),
        }
        if "append" in only:
            figure(
                "signed append, SQLite, batches of 100",
                lambda: signed_append(node, args.events),
                lambda: plain_append({**sqlite_env, "SQLITE_DBNAME": str(tmp / f"{uuid4().hex}.db")}, args.events),
                "events/s",
                "≥0.8× and ≥14k/s",
            )
            figure(
                "signed append, SQLite, persons already keyed",
                lambda: signed_append_known(node, args.events),
                lambda: plain_append({**sqlite_env, "SQLITE_DBNAME": str(tmp / f"{uuid4().hex}.db")}, args.events),
                "events/s",
                "≥0.8× and ≥14k/s",
            )
        if "log" in only:
            from tests.perf.scale_figures import build_signed_log

            build_signed_log(node, args.log_events)  # provision requests: portal, queues and timeline have work
            figure(
                "audit verify of the whole log",
                lambda: audit_verify(node),
                lambda: raw_decode(node),
                "events/s",
                "≥0.5× and ≥50k/s",
            )
            figure(
                "projection rebuild (all projections)",
                lambda: rebuild(node),
                lambda: raw_decode(node),
                "events/s",
                "≥0.5×",
            )
            figure(
                "rebuild in place, as before #23 (raw decode)",
                lambda: rebuild_in_place(node),
                lambda: raw_decode(node),
                "events/s",
                "(for comparison)",
            )
        if "request" in only:
            ours_p99, raw_p99 = request_path(node, args.subjects)
            row("request-path decision p99 (µs)", ours_p99, raw_p99, "µs", "p99 ≤ 100 µs")
        node.close()
        if "kafka" in only:
            from tests.perf import kafka_figures
            from tests.support.tansu import broker

            with broker() as address:
                figure(
                    "ingest from Kafka (consume+verify+append+project)",
                    lambda: kafka_figures.kafka_ingest(tmp, address, args.kafka_events),
                    lambda: plain_append(
                        {**sqlite_env, "SQLITE_DBNAME": str(tmp / f"{uuid4().hex}.db")}, args.kafka_events
                    ),
                    "events/s",
                    "≥0.7× and ≥10k/s",
                )
                figure(
                    "nationwide propagation B → A p99 (ms)",
                    lambda: kafka_figures.propagation_p99(tmp, address, args.samples),
                    lambda: kafka_figures.kafka_latency_p99(address, args.samples),
                    "ms",
                    "p99 ≤ 50 ms",
                )
        if "portal" in only:
            from tests.perf.scale_figures import portal_store, portal_view_cold, portal_view_p99

            store, number, loaded = portal_store(tmp, args.records)  # built once, probed in every run
            p99s, p50s, colds = [], [], []
            for _ in range(args.runs):
                colds.append(portal_view_cold(store, number))
                p, median = portal_view_p99(store, number)
                p99s.append(p)
                p50s.append(median)
            store.close()
            row(
                f"portal view, one subject, {args.records:,} records p99 (ms)",
                statistics.median(p99s),
                None,
                "ms",
                "p99 ≤ 2 ms",
                runs={"ours": [round(x, 3) for x in p99s]},
                p50_ms=round(statistics.median(p50s), 3),
                first_view_ms=round(statistics.median(colds), 3),
                note=f"other people's records bulk-loaded into portal_records (executemany) in {loaded:.0f} s; "
                "the subject's own records are real events, each checked against its signed event on the "
                "first view of a process (first_view_ms)",
            )
        if "memory" in only:
            from tests.perf.scale_figures import build_signed_log, peak_rss

            data_dir = memory_log(tmp, args.memory_log, args.memory_events)
            # the audit's heads are capped at 100k streams by default; the capped run shows, at this size,
            # what a 10M-event log does past the cap (heads spilled to a temporary table)
            cap = max(1, args.memory_events // 40)
            for what, heads in (("rebuild", None), ("audit", None), ("audit", cap)):
                r = peak_rss(data_dir, what, heads)
                tenths = r["by_tenth_mb"]
                first = tenths.get("1", tenths.get("0", r["opened_mb"]))
                label = what if heads is None else f"{what} (heads capped at {heads:,})"
                row(
                    f"peak RSS, {label} of {args.memory_events:,} events (MB)",
                    r["total_mb"],
                    None,
                    "MB",
                    "flat, ≤ 300 MB",
                    rss=r,
                    growth_after_first_tenth_mb=round(r["peak_mb"] - first, 1),
                )
        if "postgres" in only:
            with temp_database() as url, temp_database() as url2:
                pg = _node(tmp, url)
                from urllib.parse import urlparse

                u = urlparse(url2)
                pg_env = {
                    "PERSISTENCE_MODULE": "eventsourcing.postgres",
                    "POSTGRES_DBNAME": u.path.lstrip("/"),
                    "POSTGRES_HOST": "127.0.0.1",
                    "POSTGRES_PORT": "5432",
                    "POSTGRES_USER": "postgres",
                    "POSTGRES_PASSWORD": "",
                    "CREATE_TABLE": "y",
                    "CIPHER_TOPIC": sqlite_env["CIPHER_TOPIC"],
                    "CIPHER_KEY": sqlite_env["CIPHER_KEY"],
                }
                figure(
                    "signed append, PostgreSQL, batches of 100",
                    lambda: signed_append(pg, args.events),
                    lambda: plain_append(pg_env, args.events),
                    "events/s",
                    "≥0.8×",
                )
                pg.close()
        if "hub" in only:
            hub_bench.run(args, tmp, row, figure)
    except BaseException as exc:
        # a long run that fails (or is stopped) late keeps the figures it has: saved, marked incomplete
        if table:
            _save(args, loadavg, started, table, incomplete=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _save(args, loadavg, started, table)
    return 0


def _save(
    args: argparse.Namespace,
    loadavg: tuple[float, float, float],
    started: float,
    table: list[dict[str, Any]],
    incomplete: str | None = None,
) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = {
        "machine": machine(loadavg),
        "args": settings,
        "seconds": round(time.perf_counter() - started),
        "figures": table,
        **({"incomplete": incomplete} if incomplete is not None else {}),
    }
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(
        f"saved {out} ({result['seconds']} s){' — INCOMPLETE: ' + incomplete if incomplete else ''}",
        file=sys.stderr if incomplete else sys.stdout,
        flush=True,
    )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
