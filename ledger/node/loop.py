"""The node loop: relay + consume + projections in one process until SIGTERM (``flagledger node``).

Each round: a signed tree head when one is due, the outbox relay, one poll of the inbox consumer, the
projections caught up (by a second process unless ``projections="inline"``), the scheduled views audit, once a
minute the answer batch step (staff-made answers released at the providers' batch times, overdue held requests
escalated: docs/answers.md), and ``node-status.json`` rewritten. A database or broker that is away costs a pause
and a retry, never an event.
Metrics, health and readiness (ledger.node.observe) are served when a metrics port is configured.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from consumers.broker import BrokerUnavailable, retry_delay
from consumers.inbox import Consumer
from consumers.node_status import ParkedWatch, StatusFile
from consumers.outbox import Relay
from consumers.settings import KafkaSettings
from ledger import clock
from ledger.app.answers import run_batches
from ledger.app.checkpoints import Checkpointer, CheckpointSettings
from ledger.errors import FlagLedgerError, StateConflict, StorageError
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import hub_mode

BATCH_STEP_SECONDS = 60.0  # how often the loop looks for answers to release and requests past due


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class NodeOptions:
    seconds: float | None = None  # stop after this long (None: until SIGTERM)
    checkpoint_every: float | None = None  # None: the configured checkpoints.every_seconds
    checkpoint_events: int | None = None  # None: the configured checkpoints.every_events
    audit_views_every: float = 3600.0
    metrics_port: int | None = None
    metrics_host: str | None = None
    log_format: str | None = None
    projections: str = "process"  # or "inline"
    year_step_every: float = 3600.0  # the year's reminders and escalations (ledger.app.year), from the app's clock


def stopper(seconds: float | None) -> Callable[[], bool]:
    """True once SIGTERM or SIGINT arrived, or ``seconds`` passed: the loop stops between polls."""
    stop = {"now": False}
    deadline = time.monotonic() + seconds if seconds else None

    def handle(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return lambda: stop["now"] or (deadline is not None and time.monotonic() > deadline)


def run(node: Node, options: NodeOptions, start_api: Callable[[], Closeable] | None = None) -> dict[str, Any]:
    """Run the loop on ``node`` until stopped and return the last status written to ``node-status.json``;
    ``start_api`` starts the HTTP API beside the loop (closed on the way out)."""
    from ledger.node.observe import HealthServer, NodeMetrics, ObserveSettings, configure_logging

    observe = ObserveSettings.from_config(
        node.config,
        metrics_port=options.metrics_port,
        metrics_host=options.metrics_host,
        log_format=options.log_format,
    )
    configure_logging(observe.log_format)
    log = logging.getLogger("flagledger.node")
    if hub_mode(node.config):  # issue 19: an agency in hub mode talks to the hub only, never on the shared topic
        from ledger.node.agency_loop import run_agency
        from ledger.node.role_metrics import RoleMetrics

        party = RoleMetrics("agency", now=node.app.clock)
        served = HealthServer(party, observe) if observe.metrics_port else None
        if served is not None:
            log.info("serving /metrics, /healthz, /readyz on %s:%d", observe.metrics_host, served.port)
        try:
            return run_agency(node, stopper(options.seconds), year_step_every=options.year_step_every, metrics=party)
        finally:
            if served is not None:
                served.close()
    settings = KafkaSettings.from_config(node.config)
    follower = None
    if options.projections == "process":
        from ledger.runtime.follower import Follower

        follower = Follower(node.config.data_dir, node.engine)
        follower.start()
        log.info("projections are caught up by a second process (pid %s)", follower.pid)
    relay, consumer = Relay(node, settings), Consumer(node, settings, project=follower is None)
    api = start_api() if start_api is not None else None
    status_file = node.config.data_dir / "node-status.json"
    status_out, parked_count = StatusFile(status_file), ParkedWatch(node.engine).count
    metrics = NodeMetrics()
    server = HealthServer(metrics, observe) if observe.metrics_port else None
    if server is not None:
        log.info("serving /metrics, /healthz, /readyz on %s:%d", observe.metrics_host, server.port)
    from ledger.runtime.views_audit import ScheduledViewsAudit

    views_audit = ScheduledViewsAudit(node.config.data_dir, options.audit_views_every)
    from ledger.runtime.subject_keys import reapply_erasures

    if gone := reapply_erasures(node.app):  # a restored backup brought back data keys the log says were erased
        log.warning("destroyed %d data keys again that the log records as erased (a restored backup?)", gone)
    try:
        node.state.fresh()  # the decisions' state built from the verified log now, not at the first request
    except FlagLedgerError as exc:  # replication goes on; every decision fails until the log is repaired
        log.error("ALARM: the decisions' state cannot be built: [%s] %s", exc.code, exc)
    until = stopper(options.seconds)
    heads = CheckpointSettings.from_config(
        node.config, every_events=options.checkpoint_events, every_seconds=options.checkpoint_every
    )
    checkpointer, next_try = Checkpointer(node.app), 0.0
    next_year_step, year_recorded = 0.0, 0
    measured = 0.0
    failures = 0
    next_batch_step = 0.0
    status: dict[str, Any] = {}
    try:
        while not until():
            if (heads.every_events or heads.every_seconds) and time.monotonic() >= next_try:
                try:
                    # a signed tree head every N events or T seconds, before the relay so peers get it this round
                    checkpointer.sign_due(heads, time.monotonic())
                except FlagLedgerError as exc:  # e.g. a rewritten log: keep serving, shout, retry a bit later
                    log.error("ALARM: checkpoint not signed: [%s] %s", exc.code, exc)
                    next_try = time.monotonic() + max(1.0, float(heads.every_seconds or 60))
            if time.monotonic() >= next_year_step:
                next_year_step = time.monotonic() + options.year_step_every
                try:
                    # reminders and escalations are events: recorded before the relay, shared like any other
                    year_recorded += len(node.app.year_step())
                except FlagLedgerError as exc:  # nothing lifted either way: shout and try at the next turn
                    log.error("ALARM: the year's step failed: [%s] %s", exc.code, exc)
            try:
                relay.run_once()
                consumer.poll_once(settings.poll_timeout_ms)
                if follower is not None and follower.ensure_running():
                    follower.poke()  # after every round: checkpoints and API writes are events too
                else:
                    node.projector.catch_up()
                failures = 0
            except (StorageError, StateConflict, BrokerUnavailable) as exc:
                failures += 1  # the database or broker is away: nothing is lost, try again after a pause
                delay = retry_delay(failures)
                log.error("node: %s [%s]; retrying in %.1f s", exc, exc.code, delay)
                time.sleep(delay)
                continue
            if views_audit.tick():
                metrics.views_audit(views_audit.last)
            if time.monotonic() >= next_batch_step:
                # staff-made answers are released at the providers' batch times; held requests past due escalate
                next_batch_step = time.monotonic() + BATCH_STEP_SECONDS
                try:
                    run_batches(node.app, clock.now())
                except FlagLedgerError as exc:
                    log.error("ALARM: the answer batch step failed: [%s] %s", exc.code, exc)
            lag = node.app.max_position() - relay.position()
            status = {
                "relay_position": relay.position(),
                "relay_lag": lag,
                "counts": consumer.counts,
                "parked": parked_count(),
                "incidents": _incident_status(node, consumer),
                "republished_after_loss": relay.republished_after_loss,
                "reread_after_loss": consumer.rewinds,  # the events topic was recreated: read again from the start
                "projections": options.projections,
                **({"projections_restarts": follower.restarts} if follower is not None else {}),
                "audit_views": views_audit.status(),
                "year_step_recorded": year_recorded,
            }
            status_out.write(status)
            if time.monotonic() - measured >= 1.0:  # a snapshot a second is plenty for a 15 s scrape
                measured = time.monotonic()
                try:
                    metrics.update(node, relay, consumer)
                except Exception:  # a failed measurement must not stop replication; /healthz goes stale instead
                    log.exception("metrics snapshot failed")
        log.info("stopping: %s", status_file.read_text() if status_file.exists() else "{}")
    finally:
        views_audit.close()
        if api is not None:
            api.close()
        if server is not None:
            server.close()
        relay.close()
        consumer.close()
        if follower is not None:
            follower.close()
    return status


def _incident_status(node: Node, consumer: Consumer) -> dict[str, Any]:
    """Incidents raised by this process per kind, and those open per alerted agency (as projected)."""
    from ledger.node.observe import open_incidents

    with node.engine.connect() as conn:
        open_now = open_incidents(conn, sorted(node.app.hosted))
    return {"raised": dict(consumer.incidents), "open": open_now}
