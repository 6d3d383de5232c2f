"""CLI: ``relay``, ``consume``, ``node``, ``consumers parked|replay``, ``topics ensure``."""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Any

from consumers.kafka_io import (
    BrokerUnavailable,
    Consumer,
    Relay,
    ensure_topics,
    parked,
    replay_parked,
    retry_delay,
)
from consumers.node_status import ParkedWatch, StatusFile
from consumers.revoked_acceptance import accept_revoked
from consumers.settings import KafkaSettings
from ledger.checkpoints import Checkpointer, CheckpointSettings
from ledger.cli.main import EXTENSIONS, _actor, _node, command, out
from ledger.errors import FlagLedgerError, InputError, StateConflict, StorageError


def _parked_id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise argparse.ArgumentTypeError("not a parked message id (see `consumers parked`)")
    return int(value)


def _stopper(seconds: float | None) -> Any:
    stop = {"now": False}
    deadline = time.monotonic() + seconds if seconds else None

    def handle(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return lambda: stop["now"] or (deadline is not None and time.monotonic() > deadline)


@command("relay")
def _relay(args: argparse.Namespace) -> int:
    node = _node(args)
    relay = Relay(node, KafkaSettings.from_config(node.config))
    try:
        if args.from_start:
            relay.reset(0)
        sent = relay.run_once()
        out({"published": sent, "position": relay.position()})
    finally:
        relay.close()
    return 0


@command("consume")
def _consume(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    node = _node(args)
    consumer = Consumer(node, KafkaSettings.from_config(node.config))
    try:
        consumer.run(_stopper(args.seconds))
    finally:
        consumer.close()
    out({"counts": consumer.counts})
    return 0


@command("node")
def _run_node(args: argparse.Namespace) -> int:
    """Relay + consume + projections in one process; SIGTERM stops it cleanly between polls.

    Metrics, health and readiness (consumers.observe) are served when a metrics port is configured.
    """
    from consumers.observe import HealthServer, NodeMetrics, ObserveSettings, configure_logging

    node = _node(args, pools=None)  # the configured capacity: it may serve the API beside its loop
    observe = ObserveSettings.from_config(
        node.config, metrics_port=args.metrics_port, metrics_host=args.metrics_host, log_format=args.log_format
    )
    configure_logging(observe.log_format)
    log = logging.getLogger("flagledger.node")
    settings = KafkaSettings.from_config(node.config)
    follower = None
    if args.projections == "process":
        from projections.follower import Follower

        follower = Follower(node.config.data_dir, node.engine)
        follower.start()
        log.info("projections are caught up by a second process (pid %s)", follower.pid)
    relay, consumer = Relay(node, settings), Consumer(node, settings, project=follower is None)
    api = None
    if args.serve_port is not None:
        from ledger.cli.serve import ApiThread

        api = ApiThread(node, args.serve_host, args.serve_port)
        log.info("serving the HTTP API and console on http://%s:%d", args.serve_host, args.serve_port)
    status_file = node.config.data_dir / "node-status.json"
    status_out, parked_count = StatusFile(status_file), ParkedWatch(node.engine).count
    metrics = NodeMetrics()
    server = HealthServer(metrics, observe) if observe.metrics_port else None
    if server is not None:
        log.info("serving /metrics, /healthz, /readyz on %s:%d", observe.metrics_host, server.port)
    from consumers.views_audit import ScheduledViewsAudit

    views_audit = ScheduledViewsAudit(node.config.data_dir, args.audit_views_every)
    try:
        node.state.fresh()  # the decisions' state built from the verified log now, not at the first request
    except FlagLedgerError as exc:  # replication goes on; every decision fails until the log is repaired
        log.error("ALARM: the decisions' state cannot be built: [%s] %s", exc.code, exc)
    until = _stopper(args.seconds)
    heads = CheckpointSettings.from_config(node.config)
    if args.checkpoint_every is not None:
        heads = CheckpointSettings(heads.every_events, args.checkpoint_every)
    if args.checkpoint_events is not None:
        heads = CheckpointSettings(args.checkpoint_events, heads.every_seconds)
    checkpointer, next_try = Checkpointer(node.app), 0.0
    measured = 0.0
    failures = 0
    try:
        while not until():
            if (heads.every_events or heads.every_seconds) and time.monotonic() >= next_try:
                try:
                    # a signed tree head every N events or T seconds, before the relay so peers get it this round
                    checkpointer.sign_due(heads, time.monotonic())
                except FlagLedgerError as exc:  # e.g. a rewritten log: keep serving, shout, retry a bit later
                    log.error("ALARM: checkpoint not signed: [%s] %s", exc.code, exc)
                    next_try = time.monotonic() + max(1.0, float(heads.every_seconds or 60))
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
            lag = node.app.max_position() - relay.position()
            status = {
                "relay_position": relay.position(),
                "relay_lag": lag,
                "counts": consumer.counts,
                "parked": parked_count(),
                "incidents": _incident_status(node, consumer),
                "republished_after_loss": relay.republished_after_loss,
                "projections": args.projections,
                **({"projections_restarts": follower.restarts} if follower is not None else {}),
                "audit_views": views_audit.status(),
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
    return 0


def _incident_status(node: Any, consumer: Consumer) -> dict[str, Any]:
    """Incidents raised by this process per kind, and those open per alerted agency (as projected)."""
    from consumers.observe import open_incidents

    with node.engine.connect() as conn:
        open_now = open_incidents(conn, sorted(node.app.hosted))
    return {"raised": dict(consumer.incidents), "open": open_now}


@command("consumers parked")
def _parked(args: argparse.Namespace) -> int:
    for row in parked(_node(args)):
        out(row)
    return 0


@command("consumers replay")
def _replay(args: argparse.Namespace) -> int:
    if args.accept_revoked_key:
        if args.actor is None:
            raise InputError("--accept-revoked-key needs --as AGENCY/STAFF (an administrator; a second one approves)")
        step = accept_revoked(_node(args), args.id, args.actor, args.note)
        if step.outcome is None:
            out({"id": args.id, "outcome": "proposed", "acceptance": step.acceptance_id,
                 "next": f"a second administrator: consumers replay {args.id} --accept-revoked-key --as AGENCY/STAFF"})
            return 0
        outcome = step.outcome
    else:
        outcome = replay_parked(_node(args), args.id)
    out({"id": args.id, "outcome": outcome.kind, "reason": outcome.reason})
    return 0 if outcome.kind != "parked" else 5


@command("topics ensure")
def _topics(args: argparse.Namespace) -> int:
    node = _node(args)
    created = ensure_topics(KafkaSettings.from_config(node.config), args.partitions, args.replication)
    out({"created": created})
    return 0


def _register(groups: Any, sub: Any, actor: Any) -> None:
    s = sub(groups, "relay", "publish this node's shared events to Kafka (outbox relay)")
    s.add_argument("--from-start", action="store_true", help="republish everything (after a broker lost data)")
    s.set_defaults(cmd="relay")
    s = sub(groups, "consume", "ingest other agencies' events from Kafka")
    s.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until SIGTERM)")
    s.set_defaults(cmd="consume")
    s = sub(groups, "node", "relay + consume + projections until SIGTERM")
    s.add_argument("--seconds", type=float, default=None)
    s.add_argument(
        "--checkpoint-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="sign a tree head (checkpoint) this long after the last when something new was logged (0: off; "
        "default: config `checkpoints.every_seconds`, env FLAGLEDGER_CHECKPOINT_EVERY_SECONDS, else 60)",
    )
    s.add_argument(
        "--checkpoint-events",
        type=int,
        default=None,
        metavar="N",
        help="and as soon as N events were logged since the last (0: off; default: config "
        "`checkpoints.every_events`, env FLAGLEDGER_CHECKPOINT_EVERY_EVENTS, else 1000)",
    )
    s.add_argument(
        "--audit-views-every",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="run `audit views` in a child process at start and this long after each run ends; the result goes to "
        "node-status.json and the flagledger_views_audit_* metrics (0: never; default 3600)",
    )
    s.add_argument("--metrics-port", type=int, default=None, help="serve /metrics /healthz /readyz")
    s.add_argument("--metrics-host", default=None, help="address to bind (env …_METRICS_HOST; default 127.0.0.1)")
    s.add_argument("--serve-port", type=int, default=None, help="also serve the HTTP API and console on this port")
    s.add_argument("--serve-host", default="127.0.0.1", help="address for --serve-port (default 127.0.0.1)")
    s.add_argument("--log-format", choices=["text", "json"], default=None, help="env FLAGLEDGER_LOG_FORMAT")
    s.add_argument(
        "--projections",
        choices=["process", "inline"],
        default="process",
        help="catch projections up in a second process (default; ingest and projections use two cores) "
        "or inline after each poll (one core)",
    )
    s.set_defaults(cmd="node")
    g = sub(groups, "consumers", "parked (poison) messages").add_subparsers(dest="sub", required=True)
    sub(g, "parked", "list parked messages").set_defaults(cmd="consumers parked")
    s = sub(g, "replay", "re-run a parked message after fixing its cause")
    s.add_argument("id", type=_parked_id)
    s.add_argument(
        "--accept-revoked-key",
        action="store_true",
        help="apply an event signed by a key revoked since (code revoked_key_late), once its agency confirmed it: "
        "one administrator proposes (--as, --note), a second one approves (--as); each step is a ledger event",
    )
    s.add_argument("--as", dest="actor", type=_actor, default=None, metavar="AGENCY/STAFF",
                   help="the administrator taking this step (with --accept-revoked-key)")
    s.add_argument("--note", default="", help="how the originating agency confirmed it sent the event (proposer)")
    s.set_defaults(cmd="consumers replay")
    g = sub(groups, "topics", "broker topics").add_subparsers(dest="sub", required=True)
    s = sub(g, "ensure", "create the events and dead-letter topics")
    s.add_argument("--partitions", type=int, default=None, help="default: kafka setting partitions")
    s.add_argument("--replication", type=int, default=None, help="default: kafka setting replication_factor")
    s.set_defaults(cmd="topics ensure")


EXTENSIONS.append(_register)
