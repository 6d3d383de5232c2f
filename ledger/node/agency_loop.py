"""The node loop of an agency in linkage hub mode (issue 19, docs/linkage.md): no shared topic at all — no
relay of the node's envelopes, no ingest of other agencies' — only the bridge to the hub
(``consumers.linkage_bridge``), the projections, the year's step and the answer batches.

``flagledger node`` runs this instead of the shared-mode loop when config.json says ``linkage.mode: hub``
(``ledger.node.loop.run``). The transport is Kafka (``KafkaTransport``: the agency's own inbox topic, the hub's
topic, prefix ``linkage.topic_prefix``), or the one given (the in-memory transport in tests and the demo).

On a digest schedule (``linkage.digests``, ``ledger.runtime.digest_settings``; on unless switched off) the
transport is a ``ScheduledTransport``: the hub's digests are opened into their messages, and the node pushes only
when a tick is due, its registrations, flag changes, records, answers and queries then leaving in that tick's
digest (one, empty if nothing moved) — the hub's topic shows this agency like every other.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from consumers.broker import BrokerUnavailable, retry_delay
from consumers.linkage_bridge import LinkageBridge, Pushed
from consumers.node_status import StatusFile
from consumers.settings import KafkaSettings
from ledger import clock
from ledger.app.answers import run_batches
from ledger.errors import Code, FlagLedgerError, StateConflict, StorageError
from ledger.linkage.schedule import DigestSchedule
from ledger.linkage.scheduled_transport import ScheduledTransport
from ledger.linkage.transport import Topics, Transport
from ledger.node.role_metrics import RoleMetrics
from ledger.runtime.bootstrap import Node
from ledger.runtime.digest_settings import DigestSettings
from ledger.runtime.linkage import hosted_agency, linkage_directory, party_keys

__all__ = ["run_agency"]

BATCH_STEP_SECONDS = 60.0

log = logging.getLogger("flagledger.node")


def _transport(node: Node) -> Transport:
    from consumers.kafka_transport import KafkaTransport

    # the same setting as the hub's and the portal's (ledger.runtime.roles)
    prefix = os.environ.get("FLAGLEDGER_LINKAGE_TOPIC_PREFIX") or str(
        node.config.linkage.get("topic_prefix", Topics.prefix)
    )
    return KafkaTransport(KafkaSettings.from_config(node.config), hosted_agency(node.config), Topics(prefix))


def _push(bridge: LinkageBridge, schedule: DigestSchedule | None, scheduled: ScheduledTransport | None) -> Pushed:
    """Push now (no schedule), or when a tick is due and then send that tick's digest at once; the bridge records
    what it sent only once the digest is stored (a node killed before the tick sends it all again)."""
    if schedule is None or scheduled is None:
        return bridge.push()
    if not schedule.due():
        return Pushed()
    schedule.ticked()
    ticked = False

    def tick() -> None:
        nonlocal ticked
        ticked = True
        scheduled.tick()

    try:
        return bridge.push(tick=tick)
    finally:
        if not ticked:  # the push failed before its tick: this tick's digest all the same (sent again later)
            scheduled.tick()


def waiting(node: Node) -> dict[str, int]:
    """What the agency's metrics count in its database: parked messages, consultations awaiting the holder's
    advice (never naming the querier), queries not yet sent."""
    from sqlalchemy import func, select

    from ledger.runtime.tables import linkage_advice, linkage_consultations, linkage_parked

    c, a = linkage_consultations.c, linkage_advice.c
    with node.engine.connect() as conn:
        parked = conn.execute(select(func.count()).select_from(linkage_parked)).scalar_one()
        open_ = conn.execute(
            select(func.count()).select_from(linkage_consultations).where(~select(a.request_id).where(
                a.request_id == c.request_id).exists())
        ).scalar_one()  # fmt: skip
    return {"parked": int(parked), "consultations": int(open_)}


def _moved(node: Node, seen: int) -> bool:
    """Whether the node's log moved past ``seen`` (a commit the bridge has not pushed)."""
    return node.app.max_position() != seen


def run_agency(
    node: Node,
    until: Callable[[], bool],
    *,
    year_step_every: float = 3600.0,
    poll_timeout_ms: int = 100,
    transport: Transport | None = None,
    metrics: RoleMetrics | None = None,
) -> dict[str, Any]:
    """Run the hub-mode loop until ``until()``; returns the last status written to ``node-status.json``.
    ``metrics``: the snapshot the node's ``/metrics`` and ``/readyz`` serve (``ledger.node.role_metrics``)."""
    try:
        inner = transport if transport is not None else _transport(node)
    except BrokerUnavailable:
        if metrics is not None:
            metrics.down()
        raise
    schedule = DigestSettings.from_linkage(node.config.linkage).schedule()
    scheduled = None
    if schedule is not None:
        keys, directory = party_keys(node), linkage_directory(node.config)
        scheduled = ScheduledTransport(inner, keys, directory, node.app.clock, schedule.size)
    bridge = LinkageBridge(node, inner if scheduled is None else scheduled)
    status_out = StatusFile(node.config.data_dir / "node-status.json")
    totals = {"sent": 0, "registrations": 0, "applied": 0, "replays": 0, "parked": 0}
    status: dict[str, Any] = {}
    failures, next_year_step, next_batch_step = 0, 0.0, 0.0
    try:
        while not until():
            if time.monotonic() >= next_year_step:
                next_year_step = time.monotonic() + year_step_every
                try:
                    node.app.year_step()
                except FlagLedgerError as exc:
                    log.error("ALARM: the year's step failed: [%s] %s", exc.code, exc)
            if time.monotonic() >= next_batch_step:
                # before the push: a staff-made answer released now is sent in this round
                next_batch_step = time.monotonic() + BATCH_STEP_SECONDS
                try:
                    run_batches(node.app, clock.now())
                except FlagLedgerError as exc:
                    log.error("ALARM: the answer batch step failed: [%s] %s", exc.code, exc)
            try:
                # read before the push: a flag executed while the loop then waits on the hub goes out within a
                # slice of the wait, not after the whole poll (docs/performance.md, propagation); on a digest
                # schedule nothing leaves off the tick, so nothing to wake for
                wake = None if schedule is not None else partial(_moved, node, node.app.max_position())
                pushed = _push(bridge, schedule, scheduled)
                pulled = bridge.pull(poll_timeout_ms, wake=wake)
                node.projector.catch_up()
                failures = 0
            except (StorageError, StateConflict, BrokerUnavailable) as exc:
                if metrics is not None:
                    metrics.down()  # alive, not ready: the transport or the database is down
                failures += 1  # the hub or the database is away: everything stays queued; local flags still decide
                delay = retry_delay(failures)
                log.error("node (hub mode): %s [%s]; retrying in %.1f s", exc, exc.code, delay)
                time.sleep(delay)
                continue
            except FlagLedgerError as exc:
                if exc.code != Code.UNKNOWN_AGENCY:
                    raise
                failures += 1  # e.g. no linkage.portal entry: the records wait, unsent, until it is configured
                delay = retry_delay(failures)
                log.error("ALARM: node (hub mode) cannot send: %s [%s]; retrying in %.1f s", exc, exc.code, delay)
                time.sleep(delay)
                continue
            totals["sent"] += len(pushed.acts)
            totals["registrations"] += pushed.registrations
            totals["applied"] += len(pulled.applied)
            totals["replays"] += pulled.replays
            totals["parked"] += pushed.parked + len(pulled.parked)
            checked = {
                "map_checks": bridge.checks is not None,
                "hub_incidents": bridge.gate.raised,
                "witness_incidents": bridge.witness.raised,  # issue #20: consumers.linkage_witness
                "cosigned": bridge.witness.cosigned(),
            }
            queued = bridge.queued()
            status = {"linkage": {"mode": "hub", **totals, "queued": queued, **checked}}
            status_out.write(status)
            if metrics is not None:
                metrics.agency_step(bridge.transport, {**waiting(node), "queued": queued}, bridge.checks, schedule)
    finally:
        bridge.transport.close()
    return status
