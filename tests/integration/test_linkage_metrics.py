"""Metrics and probes of the linkage's parties (issue 19, docs/operations.md "The linkage's parties"): the hub's
service objects and an agency node in hub mode, each with its snapshot served over HTTP by the node's
``HealthServer`` — read here as Prometheus would, with ``urllib``.

Threats: the operator must see a stalled hub before a victim's query is answered wrongly (the hub's inbox
depth and the age of the newest map head, at the hub and at the agency), and ``/readyz`` must say not-ready
when the hub's lease is lost or the transport is down (so exactly one hub replica is ready, and a node whose
broker is gone is taken out of rotation). No figure names a person or a holder.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.errors import BrokerUnavailable
from ledger.hub.heads import MapHeads
from ledger.hub.log import open_hub_store
from ledger.hub.service import HubService
from ledger.linkage.transport import Delivery, MemoryTransport
from ledger.node.agency_loop import waiting
from ledger.node.observe import HealthServer, ObserveSettings
from ledger.node.role_metrics import RoleMetrics
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.postgres import temp_database


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[tuple[HubNodes, str]]:
    with ExitStack() as stack:
        if backend is None:
            urls: dict[str, str | None] = {}
            hub_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
        else:
            urls = {c: stack.enter_context(temp_database()) for c in (A, B, C)}
            hub_url = stack.enter_context(temp_database())
        store = open_hub_store(hub_url, "hub-1")
        w = hub_nodes(make_node, store, (A, B, C), urls, heads=MapHeads)
        yield w, hub_url
        w.close()
        store.close()


def _serve(metrics: RoleMetrics, stack: ExitStack, liveness: int = 60) -> str:
    server = HealthServer(metrics, ObserveSettings.from_config(None, metrics_port=0, liveness_seconds=liveness))
    stack.callback(server.close)
    return f"http://127.0.0.1:{server.port}"


def _get(base: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def _gauge(text: str, name: str) -> float:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


def test_one_hub_replica_is_ready_and_the_one_that_lost_the_lease_is_not(world: tuple[HubNodes, str]) -> None:
    """Operator of two hub replicas on one database: the one holding the lease is ready and says so on
    ``/metrics`` (leader 1, its sequence); the standby is alive but not ready; when the leader loses the lease
    (its lock released, the standby takes it) the old leader's next step makes it not ready and the new one
    ready — exactly one replica is ready throughout."""
    w, hub_url = world
    with ExitStack() as stack:
        second_store = open_hub_store(hub_url, "hub-2")
        stack.callback(second_store.close)
        first = w.hub
        second = HubService(second_store, MemoryTransport(w.broker, "hub"), w.hub_keys, first.directory,
                            first.now, heads=MapHeads(w.hub_keys.signer, first.heads.prover))  # type: ignore[union-attr]  # fmt: skip
        m1, m2 = RoleMetrics("hub", now=first.now), RoleMetrics("hub", now=first.now)
        u1, u2 = _serve(m1, stack), _serve(m2, stack)
        assert _get(u1, "/readyz")[0] == 503  # nothing stepped yet: not ready

        w.bridges[B].file_person(individual_number())
        w.settle()
        assert not first.step(timeout_ms=10).standby
        m1.hub_step(first)
        assert second.step(timeout_ms=10).standby
        m2.standby()
        assert _get(u1, "/readyz") == (200, "ready\n") and _get(u1, "/healthz")[0] == 200
        assert _get(u2, "/readyz") == (503, "not ready\n") and _get(u2, "/healthz")[0] == 200
        text = _get(u1, "/metrics")[1]
        assert _gauge(text, "flagledger_hub_leader") == 1 and _gauge(text, "flagledger_hub_sequence") > 0
        assert _gauge(_get(u2, "/metrics")[1], "flagledger_hub_leader") == 0

        first.store.sequencer.release()  # the lease lost (its session gone): the standby takes it
        assert not second.step(timeout_ms=10).standby
        m2.hub_step(second)
        assert first.step(timeout_ms=10).standby
        m1.standby()
        assert _get(u1, "/readyz")[0] == 503 and _get(u2, "/readyz")[0] == 200
        assert _gauge(_get(u1, "/metrics")[1], "flagledger_hub_leader") == 0


def test_a_stalled_hub_shows_before_a_query_is_answered(world: tuple[HubNodes, str]) -> None:
    """Perpetrator asking at C while the hub is stalled: C's query waits in the hub's inbox — the hub's inbox
    depth counts it before anything is answered — and the agency's newest map head ages by its own clock
    (past ``max_age`` every routed query is held for staff). A hub that stopped stepping goes stale on
    ``/healthz`` and ``/readyz``. Once it steps, the depth is 0 and C hears ``in_progress`` for flagged X."""
    w, _ = world
    x = individual_number()
    w.bridges[A].file_person(x)
    w.settle()
    set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
    w.settle()
    with ExitStack() as stack:
        hub_metrics = RoleMetrics("hub", now=w.hub.now)
        hub_url = _serve(hub_metrics, stack, liveness=1)
        w.hub.step(timeout_ms=10)
        hub_metrics.hub_step(w.hub)
        assert _get(hub_url, "/readyz")[0] == 200
        assert _gauge(_get(hub_url, "/metrics")[1], "flagledger_linkage_inbox_depth") == 0

        asked = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        w.bridges[C].push()  # the query reaches the hub's inbox; the hub does not step
        waiting_now = w.hub.transport.lag()  # type: ignore[attr-defined]
        assert waiting_now >= 1
        hub_metrics.hub_step(w.hub)  # a snapshot without a step: what an operator sees of the backlog
        assert _gauge(_get(hub_url, "/metrics")[1], "flagledger_linkage_inbox_depth") == waiting_now
        assert w.bridges[C].query(asked)["status"] in ("queued", "sent")  # nothing answered yet

        later = w.nodes[A].app.clock() + timedelta(seconds=120)
        agency = RoleMetrics("agency", now=lambda: later)
        agency_url = _serve(agency, stack)
        bridge = w.bridges[A]
        agency.agency_step(bridge.transport, {**waiting(w.nodes[A]), "queued": bridge.queued()}, bridge.checks, None)
        assert bridge.checks is not None and bridge.checks.freshness.newest is not None
        age = _gauge(_get(agency_url, "/metrics")[1], "flagledger_linkage_map_head_age_seconds")
        assert age >= 120 > bridge.checks.max_age.total_seconds()  # past the freshness bound: alarm-worthy
        assert _get(agency_url, "/readyz")[0] == 200  # local answers still work: the agency stays ready

        import time

        time.sleep(1.2)  # the hub's loop has not stepped within liveness_seconds
        assert _get(hub_url, "/healthz")[0] == 503 and _get(hub_url, "/readyz")[0] == 503

        w.settle()
        hub_metrics.hub_step(w.hub)
        assert _get(hub_url, "/readyz")[0] == 200
        assert _gauge(_get(hub_url, "/metrics")[1], "flagledger_linkage_inbox_depth") == 0
        assert w.bridges[C].query(asked)["status"] == "in_progress"
        text = _get(agency_url, "/metrics")[1]
        assert x not in text and B not in text.replace("flagledger", "")  # counts only: no person, no holder


class _GoneBroker(MemoryTransport):
    """The broker gone from under the agency's transport: every read and send fails as the Kafka transport's
    do (``BrokerUnavailable``). The in-memory broker has no outage of its own to switch on."""

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        raise BrokerUnavailable("the broker is unreachable")

    def send(self, recipient: str, message: bytes) -> None:
        raise BrokerUnavailable("the broker is unreachable")


def test_an_agency_whose_transport_is_down_is_not_ready(world: tuple[HubNodes, str]) -> None:
    """Operator of an agency in hub mode: while its broker is unreachable the node's loop keeps running (alive,
    local answers decided as always) but ``/readyz`` says not ready and ``flagledger_linkage_transport_up`` is
    0; the queries asked meanwhile are counted as queued. With the broker back, the node is ready again."""
    from ledger.node.agency_loop import run_agency

    w, _ = world
    node = w.nodes[C]
    node.config.linkage["digests"] = {"enabled": False}
    with ExitStack() as stack:
        metrics = RoleMetrics("agency", now=node.app.clock)
        url = _serve(metrics, stack)
        w.bridges[C].ask(Actor(C, "counter"), A, individual_number(), legal_item=ITEM, procedure=PROCEDURE,
                         info_kind=INFO)  # fmt: skip
        rounds = iter(range(2))
        run_agency(node, lambda: next(rounds, None) is None, transport=_GoneBroker(w.broker, C), metrics=metrics,
                   poll_timeout_ms=10)  # fmt: skip
        assert _get(url, "/healthz")[0] == 200 and _get(url, "/readyz")[0] == 503
        assert _gauge(_get(url, "/metrics")[1], "flagledger_linkage_transport_up") == 0

        rounds = iter(range(2))
        run_agency(node, lambda: next(rounds, None) is None, transport=MemoryTransport(w.broker, C), metrics=metrics,
                   poll_timeout_ms=10)  # fmt: skip
        assert _get(url, "/readyz")[0] == 200
        text = _get(url, "/metrics")[1]
        assert _gauge(text, "flagledger_linkage_transport_up") == 1
        assert _gauge(text, "flagledger_linkage_queued_queries") == 0  # sent once the broker was there
