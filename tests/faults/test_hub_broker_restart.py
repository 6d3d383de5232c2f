"""The broker restarts empty under the hub topology (issue 19's fault suite): Tansu keeps everything in memory, so
its restart loses every topic, record and group offset. The hub's loop and the agencies A, B, C keep running in
this process, on the transports they had, across the restart.

What is lost: the inbox topics, the groups' committed offsets, and any message the broker had stored that its
recipient had not yet applied. What recovers alone: each party's inbox is made again and read from its start
(a position left in the old log would skip the new log's first messages — Tansu answers a fetch past the end
with nothing); work done after the restart reaches everyone exactly once. What does not (docs/linkage.md, what
is left of #19): a message in flight when the broker died — the parties keep no copy of what the broker stored.

Threats: the broker operator or an administrator restarting the broker (routing only, no content); the
perpetrator's query about a protected person must still never be answered automatically.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_flag_changes
from tests.conftest import NodeFactory
from tests.faults.hub_checks import HubWork, exactly_once
from tests.faults.hub_kafka import drive, kafka_world
from tests.support.tansu import broker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.long]  # ~40 s: the default suite's budget for these is ~60 s


def test_broker_restarts_empty_and_the_hub_topology_goes_on(make_node: NodeFactory, tmp_path: Path) -> None:
    """Broker operator / administrator restarting the broker (see the module): 0 lost, 0 duplicated."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    port = free_port()
    work = HubWork(random.Random(11))

    def filed() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(hub_flag_changes)).scalar_one())

    with broker(port) as address:
        world = kafka_world(address, make_node, store)
        w = world.w
        work.round(w, people=3)  # enough messages that a position left in the old log would skip new ones
        drive(w, lambda: work.done(w))
    try:
        with broker(port):
            protected = work.protect(w, people=2)
            drive(w, lambda: filed() == len(work.protected), seconds=90)
            work.ask(w, protected)
            drive(w, lambda: work.done(w), seconds=90)
        exactly_once(w, store, work)
    finally:
        world.close()
        store.close()
