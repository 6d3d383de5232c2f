"""``flagledger node`` (relay + consume + projections until SIGTERM; the loop is ``ledger.node.loop``),
``flagledger relay`` and ``flagledger consume`` (one step of it each)."""

from __future__ import annotations

import logging
from typing import Any

from ledger.cli.base import command, data_dir, data_dir_text, node, out
from ledger.cli.parsing import NUMBER, WHOLE, OneOf, option
from ledger.errors import ConfigurationError
from ledger.runtime.roles import open_role, role_of


@command(None, "relay", help="publish this node's shared events to Kafka (outbox relay)")
@option("--from-start", is_flag=True, help="republish everything (after a broker lost data)")
def relay(from_start: bool) -> int:
    from consumers.outbox import Relay
    from consumers.settings import KafkaSettings

    opened = node()
    outbox = Relay(opened, KafkaSettings.from_config(opened.config))
    try:
        if from_start:
            outbox.reset(0)
        sent = outbox.run_once()
        out({"published": sent, "position": outbox.position()})
    finally:
        outbox.close()
    return 0


@command(None, "consume", help="ingest other agencies' events from Kafka")
@option("--seconds", type=NUMBER, default=None, help="stop after this long (default: until SIGTERM)")
def consume(seconds: float | None) -> int:
    from consumers.inbox import Consumer
    from consumers.settings import KafkaSettings
    from ledger.node.loop import stopper

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    opened = node()
    consumer = Consumer(opened, KafkaSettings.from_config(opened.config))
    try:
        consumer.run(stopper(seconds))
    finally:
        consumer.close()
    out({"counts": consumer.counts})
    return 0


@command(None, "node", help="relay + consume + projections until SIGTERM")
@option("--seconds", type=NUMBER, default=None)
@option(
    "--checkpoint-every",
    type=NUMBER,
    default=None,
    metavar="SECONDS",
    help="sign a tree head (checkpoint) this long after the last when something new was logged (0: off; "
    "default: config `checkpoints.every_seconds`, env FLAGLEDGER_CHECKPOINT_EVERY_SECONDS, else 60)",
)
@option(
    "--checkpoint-events",
    type=WHOLE,
    default=None,
    metavar="N",
    help="and as soon as N events were logged since the last (0: off; default: config "
    "`checkpoints.every_events`, env FLAGLEDGER_CHECKPOINT_EVERY_EVENTS, else 1000)",
)
@option(
    "--audit-views-every",
    type=NUMBER,
    default=3600.0,
    metavar="SECONDS",
    help="run `audit views` in a child process at start and this long after each run ends; the result goes "
    "to node-status.json and the flagledger_views_audit_* metrics (0: never; default 3600)",
)
@option("--metrics-port", type=WHOLE, default=None, help="serve /metrics /healthz /readyz")
@option("--metrics-host", default=None, help="address to bind (env …_METRICS_HOST; default 127.0.0.1)")
@option(
    "--serve-port",
    type=WHOLE,
    default=None,
    help="also serve the HTTP API and console on this port (a portal: its card sign-in and page routes)",
)
@option("--serve-host", default="127.0.0.1", help="address for --serve-port (default 127.0.0.1)")
@option("--log-format", type=OneOf(["text", "json"]), default=None, help="env FLAGLEDGER_LOG_FORMAT")
@option(
    "--projections",
    type=OneOf(["process", "inline"]),
    default="process",
    help="catch projections up in a second process (default; ingest and projections use two cores) "
    "or inline after each poll (one core)",
)
@option(
    "--role",
    type=OneOf(["agency", "hub", "portal", "witness"]),
    default=None,
    help="the role this directory was made for (`init --role`); default: read from its config.json",
)
def node_(
    seconds: float | None,
    checkpoint_every: float | None,
    checkpoint_events: int | None,
    audit_views_every: float,
    metrics_port: int | None,
    metrics_host: str | None,
    serve_port: int | None,
    serve_host: str,
    log_format: str | None,
    projections: str,
    role: str | None,
) -> int:
    from ledger.node.loop import Closeable, NodeOptions, run

    if (found := role_of(data_dir())) != (role or found):
        raise ConfigurationError(f"{data_dir_text()} is a {found} node, not a {role} node")
    if found != "agency":
        from ledger.node.roles import run_role

        role_node = open_role(data_dir())
        if serve_port is not None and found != "portal":
            raise ConfigurationError(f"--serve-port serves the portal's page: a {found} node serves no HTTP routes")
        status = run_role(
            role_node,
            seconds,
            log_format or "text",
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            start_http=None if serve_port is None else lambda: _portal_http(role_node, serve_host, serve_port),
        )
        out({"stopped": found, **status})
        return 0

    opened = node(pools=None)  # the configured capacity: it may serve the API beside its loop
    options = NodeOptions(
        seconds,
        checkpoint_every,
        checkpoint_events,
        audit_views_every,
        metrics_port,
        metrics_host,
        log_format,
        projections,
    )

    def start_api() -> Closeable:
        from ledger.cli.serve import ApiThread

        api = ApiThread(opened, serve_host, serve_port or 0)
        logging.getLogger("flagledger.node").info(
            "serving the HTTP API and console on http://%s:%d", serve_host, serve_port
        )
        return api

    status = run(opened, options, start_api if serve_port is not None else None)
    out({"stopped": "node", **status})
    return 0


def _portal_http(role_node: Any, host: str, port: int) -> Any:
    """The portal's card sign-in and page routes (``ledger.api.portal``) in a thread beside its loop."""
    from ledger.api.portal import create_portal_app
    from ledger.cli.portal import card_sign_ins
    from ledger.cli.serve import ApiThread

    sign_ins = card_sign_ins(role_node)
    api = ApiThread(role_node, host, port, create_portal_app(sign_ins))
    logging.getLogger("flagledger.node").info("serving the portal's page on http://%s:%d/portal/v1/", host, port)

    class _Both:
        def close(self) -> None:
            api.close()
            sign_ins.store.close()

    return _Both()
