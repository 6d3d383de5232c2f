"""Staff terminals under load: many keep-alive API clients against a real `flagledger serve` process.

Used by the load tests (tests/e2e/test_api_load.py: correctness under load) and the load figure
(tests/perf/api_load.py: throughput and latency). Every client loops over a mix of reads and writes as 50-200
staff terminals would: counter look-ups, queues and flag state beside flag requests, approvals and executions
racing for the same requests, provision queries and recorded reads. The client counts what the server
acknowledged, so a test can check that every acknowledged write is exactly its events in the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from ledger.api.auth import sign_in
from ledger.app import Actor
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.support.people import individual_number
from tests.support.staff import activate_admin, enrol, password_of

AGENCY = "131016"
ROLES = {
    "req": "requester",
    "apr": "approver",
    "apr2": "approver",
    "op": "operator",
    "counter": "counter",
    "aud": "auditor",
    "rev": "reviewer",
}
# what each acknowledged write leaves in the log, by topic suffix (the test counts these in the log)
FLAG_REQUESTED = "FlagRequest.Requested"
APPROVED = "FlagRequest.Approved"
EXECUTED = "FlagRequest.Executed"
PROVISION = "ProvisionRequest.Received"
ACCESS_READ = "AccessRecord.ProtectedDetailsRead"
CASE_OPENED = "ProtectionCase.Opened"


@dataclass
class Cast:
    """A node's data directory with one agency, its staff and their API tokens, and the people asked about."""

    data_dir: Path
    tokens: dict[str, str]
    people: list[str]
    database_url: str | None = None


def make_cast(data_dir: Path, database_url: str | None = None, people: int = 60, seed: int = 16) -> Cast:
    """A fresh node (closed again) with the staff of ``ROLES`` and an 8-hour token for each."""
    node: Node = init_node(data_dir, [AgencySpec(AGENCY, "A市", "municipality")], database_url=database_url)
    try:
        admin = Actor(AGENCY, "admin")
        activate_admin(node, AGENCY)
        for who, role in ROLES.items():
            enrol(node, admin, who, [role])
        tokens = {who: sign_in(node, AGENCY, who, password_of(AGENCY, who), ttl=timedelta(hours=8))[0] for who in ROLES}
    finally:
        node.close()
    rng = random.Random(seed)
    return Cast(data_dir, tokens, [individual_number(rng) for _ in range(people)], database_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(cast: Cast, **extra: str) -> dict[str, str]:
    """This process's environment without its FLAGLEDGER_ settings, pointed at the cast's node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}
    env["FLAGLEDGER_DATA_DIR"] = str(cast.data_dir)
    env["FLAGLEDGER_PASSWORD"] = password_of(AGENCY, "req")  # the one who runs `flagledger flag request`
    if cast.database_url:
        env["FLAGLEDGER_DATABASE_URL"] = cast.database_url
    return {**env, **extra}


def flagledger(*args: str) -> list[str]:
    """The argv running ``flagledger ARGS`` with this interpreter (a checkout's sources: run it in that cwd)."""
    return [sys.executable, "-c", "import sys; from ledger.cli.main import main; sys.exit(main())", *args]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    stopped_in: float | None = None  # seconds from SIGTERM to exit; None: still running, or killed after 30 s
    output: str = ""

    def terminate(self, wait: float = 30.0) -> None:
        """SIGTERM, then wait for the exit (killed after ``wait`` seconds, leaving ``stopped_in`` None)."""
        if self.proc.poll() is not None and self.stopped_in is not None:
            return
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.output = self.proc.communicate(timeout=wait)[0]
            self.stopped_in = time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output = self.proc.communicate()[0]


@contextmanager
def serving(cast: Cast, *, source: Path | None = None, wait: float = 60.0, **env: str) -> Iterator[Server]:
    """`flagledger serve` on a free loopback port (``source``: run another checkout's code, for a baseline),
    stopped with SIGTERM on the way out unless the caller did."""
    port = free_port()
    proc = subprocess.Popen(
        flagledger("serve", "--port", str(port)),
        cwd=source,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli_env(cast, **env, **({"PYTHONPATH": str(source)} if source else {})),
    )
    server = Server(proc, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                httpx.get(f"{server.base}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"nothing serves {server.base}: {proc.communicate()[0][-2000:]}") from None
                time.sleep(0.2)
        if source is None:  # the cast unlocks their staff keys in the server (docs/staff-signing.md)
            for who, issued in cast.tokens.items():
                done = httpx.post(
                    f"{server.base}/api/v1/staff-key/unlock",
                    json={"password": password_of(AGENCY, who)},
                    headers={"Authorization": f"Bearer {issued}"},
                    timeout=60,
                )
                assert done.status_code == 200, done.text
        yield server
    finally:
        if server.stopped_in is None:
            server.terminate()


@dataclass
class LoadResult:
    """What the clients saw."""

    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    # topic suffix → acknowledged writes expected to have left one such event each
    acknowledged: Counter[str] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)  # operation → 409 answers
    bodies_5xx: list[str] = field(default_factory=list)  # 5xx other than SIGTERM's 503 ``stopping``
    stopping: int = 0  # 503 ``stopping``: a request SIGTERM came before, not started
    conflict_messages: set[str] = field(default_factory=set)
    other_refusals: list[str] = field(default_factory=list)  # 4xx other than 409: none expected

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "per_second": round(self.throughput, 1),
            "p50_ms": round(1000 * self.percentile(50), 1),
            "p99_ms": round(1000 * self.percentile(99), 1),
            "max_ms": round(1000 * max(self.latencies, default=0.0), 1),
            "timeouts": self.timeouts,
            "statuses": dict(sorted(self.statuses.items())),
            "stopping": self.stopping,
            "transport_errors": dict(self.transport_errors),
            "acknowledged": dict(self.acknowledged),
            "conflicts": dict(self.conflicts),
        }


class _Work:
    """Requests shared by every client, so approvals and executions race for the same ones."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.approved: list[str] = []


async def run_load(
    base: str,
    cast: Cast,
    *,
    clients: int,
    seconds: float,
    write_share: float = 0.3,
    timeout: float = 30.0,
    seed: int = 7,
    until_refused: bool = False,
    result: LoadResult | None = None,
    until: Callable[[LoadResult], bool] | None = None,
    most_seconds: float = 0.0,
) -> LoadResult:
    """``clients`` keep-alive clients, each sending one request after another for ``seconds``.

    ``until_refused``: a client stops at its first transport error (the server is shutting down) instead of
    counting it and going on. ``result``: count into this one (another thread may watch it grow). ``until``: go
    on past ``seconds`` while this is false of the result, up to ``most_seconds`` in all (a slow machine gets the
    same day's work done, not a shorter day judged as a broken server)."""
    result = result if result is not None else LoadResult()
    work = _Work()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # plain http: one unused context, not 200 loading CA bundles
    started = time.monotonic()
    stop_at, hard_stop = started + seconds, started + max(seconds, most_seconds)

    def going() -> bool:
        now = time.monotonic()
        return now < stop_at or (until is not None and now < hard_stop and not until(result))

    await asyncio.gather(
        *(
            _client(
                base,
                cast,
                work,
                result,
                random.Random(seed * 1000 + i),
                going,
                write_share,
                timeout,
                until_refused,
                tls,
            )
            for i in range(clients)
        )
    )
    result.seconds = time.monotonic() - started
    return result


Op = Callable[[httpx.AsyncClient, random.Random], Any]


async def _client(
    base: str,
    cast: Cast,
    work: _Work,
    result: LoadResult,
    rng: random.Random,
    going: Callable[[], bool],
    write_share: float,
    timeout: float,
    until_refused: bool,
    tls: ssl.SSLContext,
) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)  # one terminal, one connection
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits, verify=tls) as http:
        while going():
            answered = await _one(http, cast, work, result, rng, write_share)
            if until_refused and not answered:
                return


def _auth(cast: Cast, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {cast.tokens[who]}"}


async def _one(
    http: httpx.AsyncClient, cast: Cast, work: _Work, result: LoadResult, rng: random.Random, write_share: float
) -> bool:
    """One request; False if no answer came (timeout, connection refused or cut)."""
    person = rng.choice(cast.people)
    if rng.random() < write_share:
        kind = rng.choices(
            ["request", "approve", "execute", "provision", "recorded", "case"], weights=[4, 4, 3, 3, 2, 1]
        )[0]
    else:
        kind = rng.choice(["whoami", "counter", "agency_flags", "request_path", "queue", "nationwide"])
    if (kind == "approve" and not work.pending) or (kind == "execute" and not work.approved):
        kind = "request"
    rid = ""
    if kind == "request":
        method, url, who, body = (
            "POST",
            "/api/v1/flag-requests",
            "req",
            {
                "subject": person,
                "flags": rng.choice([["NON_DISCLOSURE"], ["NO_AUTO_RESPONSE"], ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]]),
            },
        )
    elif kind == "approve":
        rid = rng.choice(work.pending[-20:])  # recent ones: several clients race for each
        method, url, who, body = "POST", f"/api/v1/flag-requests/{rid}/approve", rng.choice(["apr", "apr2"]), {}
    elif kind == "execute":
        rid = rng.choice(work.approved[-20:])
        method, url, who, body = "POST", f"/api/v1/flag-requests/{rid}/execute", "op", None
    elif kind == "provision":
        method, url, who, body = (
            "POST",
            "/api/v1/provision-requests",
            "counter",
            {
                "provider": AGENCY,
                "subject": person,
                "legal_item": 74,
                "procedure": "児童手当",
                "info_kind": "地方税関係情報",
            },
        )
    elif kind == "recorded":
        # an auditor's timeline: one recorded read each (the nationwide holders no longer open with a purpose)
        method, url, who, body = "POST", "/api/v1/queries/timeline", "aud", {"subject": person, "purpose": "監査"}
    elif kind == "case":
        method, url, who, body = "POST", "/api/v1/cases", "req", {"victim": person}
    elif kind == "whoami":
        method, url, who, body = "GET", "/api/v1/whoami", rng.choice(list(cast.tokens)), None
    elif kind == "counter":
        method, url, who, body = "POST", "/api/v1/queries/counter", "counter", {"subject": person}
    elif kind == "agency_flags":
        method, url, who, body = "POST", "/api/v1/queries/agency-flags", "req", {"subject": person}
    elif kind == "request_path":
        method, url, who, body = "POST", "/api/v1/queries/request-path", "counter", {"subject": person}
    elif kind == "queue":
        method, url, who, body = "GET", "/api/v1/queue", rng.choice(["apr", "counter", "op"]), None
    else:
        method, url, who, body = "POST", "/api/v1/queries/nationwide", "counter", {"subject": person}
    began = time.monotonic()
    try:
        r = await http.request(method, url, headers=_auth(cast, who), json=body)
    except httpx.TimeoutException:
        result.timeouts += 1
        return False
    except httpx.TransportError as exc:
        result.transport_errors[type(exc).__name__] += 1
        return False
    result.latencies.append(time.monotonic() - began)
    result.statuses[r.status_code] += 1
    stopping = r.status_code == 503 and r.headers.get("content-type") == "application/json"
    if stopping and r.json().get("code") == "stopping":
        result.stopping += 1
        return False  # the server is going: like a refused connection, this client is done
    if r.status_code >= 500:
        result.bodies_5xx.append(r.text[:300])
        return True
    if r.status_code == 409:
        result.conflicts[kind] += 1
        result.conflict_messages.add(str(r.json().get("message", "")))
        if kind == "approve" and rid in work.pending:
            work.pending.remove(rid)
        if kind == "execute" and rid in work.approved:
            work.approved.remove(rid)
        return True
    if r.status_code >= 300:
        result.other_refusals.append(f"{kind} {r.status_code} {r.text[:200]}")
        return True
    data = r.json()
    if kind == "request":
        result.acknowledged[FLAG_REQUESTED] += 1
        work.pending.append(str(data["request_id"]))
    elif kind == "approve":
        result.acknowledged[APPROVED] += 1
        if rid in work.pending:
            work.pending.remove(rid)
        if data["status"] == "approved":
            work.approved.append(rid)
    elif kind == "execute":
        result.acknowledged[EXECUTED] += 1
        if rid in work.approved:
            work.approved.remove(rid)
    elif kind == "provision":
        result.acknowledged[PROVISION] += 1
    elif kind == "recorded":
        result.acknowledged[ACCESS_READ] += 1
    elif kind == "case":
        result.acknowledged[CASE_OPENED] += 1
    elif kind == "queue":  # a decider's listing of held requests records one read per person shown
        shown = {h["subject"] for h in data["held"]} | {p["subject"] for p in data["probes"] if p["subject"]}
        result.acknowledged[ACCESS_READ] += len(shown)
    return True


def cli_writer(cast: Cast, stop: Callable[[], bool], acknowledged: Counter[str], failures: list[str]) -> None:
    """A shell user beside the API: `flagledger flag request` again and again until ``stop()``."""
    rng = random.Random(99)
    while not stop():
        done = subprocess.run(
            flagledger(
                "flag",
                "request",
                "--as",
                f"{AGENCY}/req",
                "--subject",
                rng.choice(cast.people),
                "--flag",
                "NON_DISCLOSURE",
            ),
            capture_output=True,
            text=True,
            env=cli_env(cast),
            timeout=120,
            check=False,
        )
        if done.returncode == 0:
            acknowledged[FLAG_REQUESTED] += 1
        else:
            failures.append(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")


@dataclass
class Census:
    """The node's log, counted: events by topic suffix (``Class.Event``), approvals and executions per request."""

    topics: Counter[str]
    approvals: Counter[str]
    executions: Counter[str]


def census(cast: Cast) -> Census:
    from ledger.capacity import ONE_SHOT
    from ledger.runtime.bootstrap import open_node

    node = open_node(cast.data_dir, pools=ONE_SHOT)
    topics: Counter[str] = Counter()
    approvals: Counter[str] = Counter()
    executions: Counter[str] = Counter()
    try:
        for _, _, env in node.app.envelopes():
            topic = env.header.topic.rsplit(":", 1)[-1]
            topics[topic] += 1
            if topic == APPROVED:
                approvals[env.header.stream] += 1
            elif topic == EXECUTED:
                executions[env.header.stream] += 1
    finally:
        node.close()
    return Census(topics, approvals, executions)


def report(label: str, result: LoadResult) -> str:
    s = result.summary()
    return (
        f"{label}: {s['requests']} requests in {s['seconds']} s = {s['per_second']}/s, p50 {s['p50_ms']} ms, "
        f"p99 {s['p99_ms']} ms, timeouts {s['timeouts']}, statuses {json.dumps(s['statuses'])}"
    )
