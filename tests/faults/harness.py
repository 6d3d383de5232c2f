"""Processes to kill: the real ``flagledger`` CLI (relay, consume, node, projections rebuild) in subprocesses.

Two agency nodes (A receives, B originates; each trusts the other's key) live in data directories the test
owns; work is added to B (and held requests at A) in-process between faults, while the victims run as
separate processes that are SIGKILLed — at a named fault point (``FLAGLEDGER_FAULTPOINT``) or at a random time.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import PersistenceError as EventsourcingPersistenceError

from consumers.outbox import publishable
from ledger.app import Actor
from ledger.errors import FlagLedgerError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node, open_node
from tests.conftest import A, B
from tests.support.people import individual_number
from tests.support.trust import trust

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))

__all__ = ["FLAGLEDGER", "Pair", "Victim", "kafka_env", "make_pair", "wait_progressing"]


def kafka_env(address: str, tag: str, **extra: str) -> dict[str, str]:
    """Environment for the CLI: this broker, topics and group of our own, short group timeouts for Tansu."""
    return {
        **os.environ,
        "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
        "FLAGLEDGER_KAFKA_TOPIC": f"events-{tag}",
        "FLAGLEDGER_KAFKA_DEAD_LETTER_TOPIC": f"dlq-{tag}",
        # a restarted member rejoins in ~4 s instead of ~11 s (the dead one is dropped sooner)
        "FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
        "FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS": "4000",
        "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "10",
        "FLAGLEDGER_KAFKA_LOSS_CHECK_SECONDS": "2",
        "FLAGLEDGER_KAFKA_DELIVERY_TIMEOUT_MS": "8000",
        **extra,
    }


@dataclass
class Victim:
    """A CLI process that may be killed; ``killed`` says whether it died of SIGKILL (ours or its own)."""

    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> bool:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait() == -signal.SIGKILL

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    @property
    def died_of_sigkill(self) -> bool:
        return self.proc.poll() == -signal.SIGKILL

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


RUNNING: list[Victim] = []  # every process started, so a failing test cannot leave one behind (see conftest)


def kill_leftovers() -> None:
    while RUNNING:
        victim = RUNNING.pop()
        if victim.proc.poll() is None:
            victim.kill()


def start(data_dir: Path, *args: str, env: dict[str, str], log: Path, faultpoint: str | None = None) -> Victim:
    full = dict(env)
    # one consumer group per agency node, as in production (members of one group would split partitions)
    full.setdefault("FLAGLEDGER_KAFKA_GROUP_ID", f"g-{env['FLAGLEDGER_KAFKA_TOPIC']}-{data_dir.name}")
    if faultpoint:
        full["FLAGLEDGER_FAULTPOINT"] = faultpoint
    fh = log.open("ab")
    proc = subprocess.Popen(
        [FLAGLEDGER, "--data-dir", str(data_dir), *args], env=full, stdout=fh, stderr=subprocess.STDOUT
    )
    fh.close()
    victim = Victim(proc, log)
    RUNNING.append(victim)
    return victim


def wait_until(predicate: Callable[[], bool], seconds: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass. The predicates open a running node's files from
    outside (the test's own probe): a node starting up at that moment can make one open fail (seen once:
    SQLite's "file is not a database" while both processes set up the journal). Such a failure is polled
    again; a node whose files stay unreadable still fails the wait, and the last call's error is raised."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (FlagLedgerError, sqlite3.Error, EventsourcingPersistenceError):
            pass
        time.sleep(step)
    return predicate()


def wait_progressing(
    check: Callable[[], tuple[bool, int]],
    stall: float,
    processes: dict[str, Victim] | None = None,
    step: float = 0.5,
) -> str | None:
    """Wait until ``check()`` answers done, for as long as the count it answers with (one that grows while the
    nodes work, e.g. events received) keeps growing: None once done, else why not — ``stall`` seconds without
    progress, or one of ``processes`` exited. A slow machine only makes this wait longer; a stuck node fails it in
    ``stall`` seconds. Probe errors are polled again as in :func:`wait_until`."""
    last, since = -1, time.monotonic()
    while True:
        for name, victim in (processes or {}).items():
            if victim.proc.poll() is not None:
                return f"{name} exited with {victim.proc.returncode}"
        try:
            finished, now = check()
            if finished:
                return None
        except (FlagLedgerError, sqlite3.Error, EventsourcingPersistenceError):
            now = last
        if now > last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            return f"no progress for {stall:.0f} s (progress count stayed at {last})"
        time.sleep(step)


@dataclass
class Pair:
    a_dir: Path
    b_dir: Path
    work: Path
    rng: random.Random
    people: list[str] = field(default_factory=list)
    held_at_a: set[str] = field(default_factory=set)

    def expected_from_b(self) -> set[str]:
        node = open_node(self.b_dir)
        try:
            return {Envelope.from_bytes(raw).header.event_id for _, _, raw in publishable(node.app)}
        finally:
            node.close()

    def b_events_at_a(self) -> set[str]:
        node = open_node(self.a_dir)
        try:
            return {env.header.event_id for _, _, env in node.app.envelopes() if env.header.origin == B}
        finally:
            node.close()

    def held_requests_at_a(self) -> set[str]:
        from tests.faults.checks import held_requests

        node = open_node(self.a_dir)
        try:
            return held_requests(node)
        finally:
            node.close()

    def protect_at_b(self, count: int) -> None:
        """B sets NO_AUTO_RESPONSE on ``count`` new people (request → approve → execute)."""
        node = open_node(self.b_dir)
        try:
            for _ in range(count):
                x = individual_number(self.rng)
                rid = node.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
                node.app.approve_request(Actor(B, "apr"), rid)
                node.app.execute_request(Actor(B, "op"), rid)
                self.people.append(x)
        finally:
            node.close()

    def probe_at_a(self, count: int) -> None:
        """A's counter asks about people B protects; those A already knows of are held (and some decided)."""
        node = open_node(self.a_dir)
        try:
            for x in self.rng.sample(self.people, min(count, len(self.people))):
                answer = node.app.request_provision(
                    Actor(A, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
                )
                request = node.app.provision_request(_uuid(answer.request_id))
                if request.status == "held":
                    self.held_at_a.add(answer.request_id)
                    if self.rng.random() < 0.3:
                        node.app.propose_decision(Actor(A, "rev"), request.id, "refuse", "known_perpetrator")
                        seen = node.app.provision_request(request.id).proposal_version
                        node.app.approve_decision(Actor(A, "apr"), request.id, seen)
        finally:
            node.close()


def _uuid(value: str) -> object:
    from uuid import UUID

    return UUID(value)


def make_pair(make_node: Callable[..., Node], tmp_path: Path, seed: int, a_database_url: str | None = None) -> Pair:
    """A (on SQLite or ``a_database_url``) and B on SQLite, sharing the pseudonym secret, trusting each other."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node(
        (AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key, database_url=a_database_url
    )
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b, B, "B市")
    trust(b, a, A, "A市")
    pair = Pair(a.config.data_dir, b.config.data_dir, tmp_path, random.Random(seed))
    a.close()
    b.close()
    return pair
