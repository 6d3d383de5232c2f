"""PostgreSQL loss at the hub (issue 19's fault suite on the hub topology): every backend of the hub's database
is terminated again and again (``pg_terminate_backend``) while the hub works through its inbox on a real broker
(Tansu) — mid-batch, mid-transaction, under the leader lease (its session goes with it).

Threats: an administrator restarting the database or a failing database host is no attacker, but the
perpetrator's query must still never be answered automatically; and a message the hub polled but did not apply
must not be committed past (a lost flag change is a query answered without the protection).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.hub.log import HubStore, open_hub_store
from tests.conftest import NodeFactory
from tests.faults.hub_checks import HubWork, exactly_once
from tests.faults.hub_kafka import drive, kafka_world
from tests.support.postgres import temp_database
from tests.support.tansu import broker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with broker() as where:
        yield where


def terminate_backends(url: str) -> int:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_hub_database_lost_again_and_again(address: str, make_node: NodeFactory, tmp_path: Path) -> None:
    """PostgreSQL loss at the hub (see the module): 0 lost, 0 duplicated, no automatic answer about X."""
    with temp_database("fl_hubloss") as url:
        store: HubStore = open_hub_store(url, "hub-1")
        world = kafka_world(address, make_node, store)
        w = world.w
        try:
            work = HubWork(random.Random(20261207))
            work.round(w, people=3)
            stop = threading.Event()
            kills: list[int] = []

            def terminator() -> None:
                while len(kills) < 30 and not stop.wait(0.1):
                    kills.append(terminate_backends(url))

            killer = threading.Thread(target=terminator, daemon=True)
            killer.start()
            try:
                # the parties work while the database fails; small batches: a failure lands mid-batch more often
                failed = drive(w, lambda: not killer.is_alive(), max_records=7)
            finally:
                stop.set()
                killer.join()
            work.round(w, people=1)  # and the hub works on after the database came back
            failed += drive(w, lambda: work.done(w), max_records=7)
            assert sum(kills) > 0 and failed > 0, "the fault did not strike the hub"
            exactly_once(w, store, work)
        finally:
            world.close()
            store.close()
