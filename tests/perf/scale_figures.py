"""Figures at scale: the portal view with many provision records stored, and peak memory of rebuild and audit.

The portal's records of *other* people are bulk-loaded **directly into the projection table**
(``portal_records``) with one ``executemany`` per 50k rows, not through the ledger: signing and projecting 1M
(10M) requests would take the default mode from minutes to hours on this machine and measures nothing the read
path depends on (the read sees the same rows and indexes either way). The probed subject's own records, and the
protection period that hides some of them, are real ledger events: the portal shows a record only as its signed
event states it (``projections.record_check.RecordCheck``). The memory figures run on a real signed log.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ledger.app import Actor
from ledger.domain.provision import ProvisionRequest
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from projections.portal import portal_records
from projections.views import portal_records as portal_view
from tests.support.people import individual_number
from tests.support.staff import activate_admin, enrol

__all__ = ["build_signed_log", "peak_rss", "portal_store", "portal_view_cold", "portal_view_p99"]

B, A = "131024", "131016"
LOAD_CACHE_KIB = 1 << 20  # 1 GiB of SQLite page cache while bulk-loading the portal records


def build_signed_log(node: Node, events: int, per_batch: int = 50, progress: bool = False) -> None:
    """``events`` signed events through the ledger: provision requests received and answered (every 10th held)."""
    done = 0
    for i in range(0, events // 2, per_batch):
        batch = []
        for j in range(min(per_batch, events // 2 - i)):
            r = ProvisionRequest(
                agency=B,
                querier=A,
                subject=f"p{uuid.uuid4().hex}",
                legal_item=74,
                procedure="児童手当",
                info_kind="地方税関係情報",
                applicant="unknown",
            )
            if j % 10 == 0:
                r.hold(flags=["NO_AUTO_RESPONSE"])
            else:
                r.provide_automatically()
            batch.append(r)
        node.app.save_as(B, *batch)
        done += 2 * len(batch)
        if progress and done % 100_000 < 2 * per_batch:
            print(f"  … {done:,} of {events:,} events signed", file=sys.stderr, flush=True)


def portal_store(tmp: Path, records: int) -> tuple[Node, str, float]:
    """A node with ``records`` provision records stored; (node, the probed subject's number, seconds to load)."""
    node = init_node(tmp / uuid.uuid4().hex, [AgencySpec(B, "B市", "municipality")])
    rng = random.Random(5)
    number = individual_number(rng)
    me = node.app.subject(number)
    t0 = time.perf_counter()
    cols = [c.name for c in portal_records.columns]
    sql = f"INSERT INTO {portal_records.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    others = [f"p{uuid.UUID(int=rng.getrandbits(128)).hex}" for _ in range(max(1, records // 20))]
    mine = 40  # the subject's own records (real events, below) among the rest (about 20 per person)
    with node.engine.connect() as conn:
        default_cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    with node.engine.begin() as conn:
        # a page cache big enough for the indexes being filled (random keys): the same inserts in the same
        # order build the same B-trees, without SQLite's default 2 MB cache re-reading index pages from the
        # OS for every row (10M records: 737 s before). Set back once loaded: this pooled connection stays.
        conn.exec_driver_sql(f"PRAGMA cache_size = {-LOAD_CACHE_KIB}")
        for start in range(0, records, 50_000):
            rows = []
            for k in range(start, min(records, start + 50_000)):
                subject = others[k % len(others)]
                rows.append(
                    (
                        str(uuid.UUID(int=rng.getrandbits(128))),
                        B,
                        A,
                        subject,
                        74,
                        "児童手当",
                        "地方税関係情報",
                        "unknown",
                        f"2026-{1 + k % 12:02d}-01T00:00:{k % 60:02d}.000000Z",
                        k + 1,
                        "provided",
                        None,
                    )
                )
            conn.exec_driver_sql(sql, rows)
            if records >= 1_000_000 and (start // 50_000) % 20 == 19:
                print(f"  … {start + 50_000:,} of {records:,} portal records loaded", file=sys.stderr, flush=True)
        conn.exec_driver_sql(f"PRAGMA cache_size = {default_cache}")
    # the subject was protected for a while (the view applies the NON_DISCLOSURE cutoff): records before and
    # during it stay hidden, the ones after it are shown
    app, admin = node.app, Actor(B, "admin")
    activate_admin(node, B)
    cast = (("req", "requester"), ("apr", "approver"), ("apr2", "approver"), ("op", "operator"), ("counter", "counter"))
    for who, role in cast:
        enrol(node, admin, who, [role])
    for i in range(mine):
        if i in (mine // 4, mine // 2):
            kind = "set" if i == mine // 4 else "release"
            rid = app.request_flags(Actor(B, "req"), me, ["NON_DISCLOSURE"], kind=kind, explanation="bench")
            if app.approve_request(Actor(B, "apr"), rid) == "pending":  # the last holder's release: one more
                app.approve_request(Actor(B, "apr2"), rid)
            app.execute_request(Actor(B, "op"), rid)
        app.request_provision(
            Actor(B, "counter"), B, me, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    node.projector.catch_up()
    return node, number, time.perf_counter() - t0


def portal_view_p99(node: Node, number: str, probes: int = 2000) -> tuple[float, float]:
    """(p99 ms, p50 ms) of the full portal view (catch-up, pseudonym, access, cutoff, records) of one subject.

    The first view of a process checks each shown record against its signed event (remembered after): that
    one is left out here and measured by :func:`portal_view_cold`."""
    view = portal_view(node, number, number)
    assert view.access == "self" and view.records, f"the portal shows nothing for the subject ({view})"
    lat = []
    for _ in range(probes):
        t = time.perf_counter_ns()
        portal_view(node, number, number)
        lat.append(time.perf_counter_ns() - t)
    lat.sort()
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e6, lat[len(lat) // 2] / 1e6


def portal_view_cold(node: Node, number: str) -> float:
    """ms of one portal view with nothing remembered: every shown record read from the log and verified."""
    node.extra.pop("record_check", None)
    node.extra.pop("portal_reader", None)
    t = time.perf_counter_ns()
    view = portal_view(node, number, number)
    elapsed = (time.perf_counter_ns() - t) / 1e6
    assert view.records
    return elapsed


RSS_CHILD = Path(__file__).with_name("rss_child.py")


def peak_rss(data_dir: Path, what: str, heads: int | None = None) -> dict[str, Any]:
    """Run ``rebuild`` or ``audit`` on the node in ``data_dir`` in a fresh process; its RSS as it goes (MB).

    ``heads``: the audit's in-memory stream-head cap (default: ``ledger.log.stream_heads.DEFAULT_CAPACITY``)."""
    cmd = [sys.executable, str(RSS_CHILD), what, str(data_dir), *([str(heads)] if heads is not None else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2])
    if out.returncode != 0:
        raise RuntimeError(f"{what} in a subprocess failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
