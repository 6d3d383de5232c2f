"""CLI: ``relay``, ``consume``, ``node``, ``consumers parked|replay``, ``topics ensure``."""

from __future__ import annotations

import argparse
import json
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
from consumers.settings import KafkaSettings
from ledger.cli.main import EXTENSIONS, _node, command, out
from ledger.errors import StateConflict, StorageError


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
    """Relay + consume + projections in one process; SIGTERM stops it cleanly between polls."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("flagledger.node")
    node = _node(args)
    settings = KafkaSettings.from_config(node.config)
    relay, consumer = Relay(node, settings), Consumer(node, settings)
    status_file = node.config.data_dir / "node-status.json"
    until = _stopper(args.seconds)
    failures = 0
    try:
        while not until():
            try:
                relay.run_once()
                consumer.poll_once()
                node.projector.catch_up()
                failures = 0
            except (StorageError, StateConflict, BrokerUnavailable) as exc:
                failures += 1  # the database or broker is away: nothing is lost, try again after a pause
                delay = retry_delay(failures)
                log.error("node: %s [%s]; retrying in %.1f s", exc, exc.code, delay)
                time.sleep(delay)
                continue
            lag = node.app.max_position() - relay.position()
            status = {
                "relay_position": relay.position(),
                "relay_lag": lag,
                "counts": consumer.counts,
                "parked": len(parked(node)),
                "republished_after_loss": relay.republished_after_loss,
            }
            status_file.write_text(json.dumps(status))
        log.info("stopping: %s", status_file.read_text() if status_file.exists() else "{}")
    finally:
        relay.close()
        consumer.close()
    return 0


@command("consumers parked")
def _parked(args: argparse.Namespace) -> int:
    for row in parked(_node(args)):
        out(row)
    return 0


@command("consumers replay")
def _replay(args: argparse.Namespace) -> int:
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
    s.set_defaults(cmd="node")
    g = sub(groups, "consumers", "parked (poison) messages").add_subparsers(dest="sub", required=True)
    sub(g, "parked", "list parked messages").set_defaults(cmd="consumers parked")
    s = sub(g, "replay", "re-run a parked message after fixing its cause")
    s.add_argument("id", type=int)
    s.set_defaults(cmd="consumers replay")
    g = sub(groups, "topics", "broker topics").add_subparsers(dest="sub", required=True)
    s = sub(g, "ensure", "create the events and dead-letter topics")
    s.add_argument("--partitions", type=int, default=12)
    s.add_argument("--replication", type=int, default=1)
    s.set_defaults(cmd="topics ensure")


EXTENSIONS.append(_register)
