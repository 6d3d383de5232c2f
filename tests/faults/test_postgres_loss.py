"""PostgreSQL connection loss mid-transaction (``pg_terminate_backend`` from another connection).

1. Deterministic: the projector's connection is terminated in the middle of a page. ``catch_up`` raises our
   StorageError saying nothing of the page was kept and what to do; the next ``catch_up`` (a fresh pooled
   connection) completes, and the projections equal a rebuild.
2. A ``flagledger consume`` process on a PostgreSQL node has every backend of its database terminated again
   and again while it ingests. It logs each failure as ours and retries (or, if it dies, a restart finishes);
   in the end every event of B is at A exactly once and the after-fault checks pass.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, text

from ledger.app import Actor
from ledger.errors import StorageError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec
from projections.base import Projection, Projector
from tests.conftest import B
from tests.faults.checks import assert_node_sound, completeness, projection_dump
from tests.faults.harness import FLAGLEDGER, kafka_env, make_pair, start, wait_until
from tests.support.postgres import ADMIN_DSN, temp_database
from tests.support.tansu import broker

pytestmark = pytest.mark.postgres


def terminate_backends(database: str) -> int:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


class CutMidPage(Projection):
    """On its first event, has another connection terminate this transaction's backend."""

    name = "cut"
    tables = ()
    topics = frozenset({"ledger.domain.flags:Protection.FlagsSet"})

    def __init__(self) -> None:
        self.cuts = 0

    def handle(self, conn: Connection, event: Any, env: Envelope, position: int) -> None:
        if self.cuts == 0:
            self.cuts += 1
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_projector_connection_killed_mid_page(make_node, person) -> None:
    with temp_database() as url:
        node = make_node((AgencySpec(B, "B市", "municipality"),), database_url=url)
        node.projector.catch_up()
        for _ in range(3):
            rid = node.app.request_flags(Actor(B, "req"), person(), ["NO_AUTO_RESPONSE"])
            node.app.approve_request(Actor(B, "apr"), rid)
            node.app.execute_request(Actor(B, "op"), rid)
        cut = CutMidPage()
        projector = Projector(node.app, node.engine, [*node.projector.projections, cut])
        before = projector.positions()
        with pytest.raises(StorageError, match="nothing of this page was kept") as caught:
            projector.catch_up()
        assert "rebuild" in str(caught.value)  # says what to do next
        assert projector.positions() == before  # the page was rolled back as a whole
        projector.catch_up()
        assert cut.cuts == 1 and set(projector.positions().values()) == {node.app.max_position()}
        live = projection_dump(node)
        node.projector.rebuild()
        assert live == projection_dump(node)
        node.close()


@pytest.mark.kafka
def test_consumer_on_postgres_survives_terminated_backends(make_node, tmp_path: Path) -> None:
    with temp_database() as url, broker() as address:
        database = url.rsplit("/", 1)[1]
        pair = make_pair(make_node, tmp_path, seed=15, a_database_url=url)
        pair.protect_at_b(25)
        env = kafka_env(address, uuid.uuid4().hex[:8])
        subprocess.run([FLAGLEDGER, "--data-dir", str(pair.b_dir), "relay"], env=env, check=True, capture_output=True)
        expected = pair.expected_from_b()
        consumer = start(pair.a_dir, "consume", env=env, log=tmp_path / "consume.log")
        cuts = 0
        stop = threading.Event()

        def cutter() -> None:
            nonlocal cuts
            while not stop.is_set():
                cuts += terminate_backends(database)
                time.sleep(0.15)

        assert wait_until(lambda: len(pair.b_events_at_a()) > 0, 40, 0.05), consumer.output()[-3000:]
        thread = threading.Thread(target=cutter)
        thread.start()
        time.sleep(3)
        stop.set()
        thread.join()
        assert cuts > 0
        if consumer.proc.poll() is not None:  # it gave up: it must have said why, in our words
            assert "StorageError" in consumer.output() or "[storage]" in consumer.output(), consumer.output()[-3000:]
            consumer = start(pair.a_dir, "consume", env=env, log=tmp_path / "consume2.log")
        ok = wait_until(lambda: pair.b_events_at_a() >= expected, 60, 0.25)
        assert ok, consumer.output()[-3000:]
        assert consumer.stop() in (0, -15)
        assert_node_sound(pair.a_dir)
        published, missing, extra = completeness(pair.a_dir, pair.b_dir)
        assert published == len(expected) and (missing, extra) == (0, 0)


def test_the_projections_process_on_postgres_survives_terminated_backends(make_node) -> None:
    """The node's second process (ledger.runtime.follower) has its backends terminated again and again while
    it projects: it logs, backs off and retries — it neither dies nor keeps half a page — and ends where a
    rebuild ends."""
    from ledger.runtime.follower import Follower
    from tests.integration.test_projection_follower import provision_requests

    with temp_database() as url:
        database = url.rsplit("/", 1)[1]
        node = make_node((AgencySpec(B, "B市", "municipality"),), database_url=url)
        provision_requests(node, 3000)  # 6,000 events: six pages to cut into
        end = node.app.max_position()
        follower = Follower(node.config.data_dir, node.engine, idle_seconds=0.05)
        follower.start()
        try:
            cuts = 0
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                follower.poke()
                cuts += terminate_backends(database)
                time.sleep(0.1)
            assert cuts > 0
            assert follower.wait_for(end, 120), f"stuck at {follower.position()} of {end}"
            assert follower.ensure_running() and follower.restarts == 0  # it survived every cut
        finally:
            follower.close()
        live = projection_dump(node)
        assert len(live["portal_records"]) == 3000
        node.projector.rebuild()
        assert live == projection_dump(node)
