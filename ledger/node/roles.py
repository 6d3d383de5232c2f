"""``flagledger node`` for a hub or a portal data directory: the role's loop on Kafka until SIGTERM.

* **hub**: ``HubService`` steps (lead or stand by, open, apply, park, route, send the outbox, commit), then a
  ``PortalFeed`` round owes the portal the pages that changed; a standby waits and tries for the lease again.
  The flag map is on (``heads``: map heads signed and announced, routing decisions proved; VRF key and head
  interval from ``ledger.runtime.hub_map``), and staff decisions are checked against the rosters the agencies
  sent (``ledger.hub.rosters``).
* **witness**: ``WitnessService`` steps and gossips (``ledger.node.witness_loop``); the hub forwards agencies'
  tree heads to the witnesses config.json's ``linkage.witnesses`` names.
* **portal**: ``PortalService`` steps (send the sealed registrations of new cards, keep the hub's pages).

Both run on a digest schedule (``linkage.digests``, ``ledger.runtime.digest_settings``; on unless switched
off): the hub sends every inbox one digest per tick and nothing else, the portal sends the hub one per tick.

The role's own inbox topic is made if missing (as the relay makes the shared topic). The directory file is read
again when it changes, so a party imported while the loop runs is known from its next step. Every
``health_every`` seconds a line says what the loop did since the last; SIGTERM or SIGINT stops it between two
steps (nothing half-done: each step commits its inbox after its database commit, or not at all).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger import clock
from ledger.errors import BrokerUnavailable, Code, FlagLedgerError, InputError, StorageError
from ledger.faultpoint import faultpoint
from ledger.hub.heads import MapHeads
from ledger.hub.portal_feed import PortalFeed
from ledger.hub.rosters import HubRosters
from ledger.hub.service import HubService
from ledger.linkage.names import HUB
from ledger.linkage.person_keys import PersonKeyProver
from ledger.node.observe import HealthServer, ObserveSettings, configure_logging
from ledger.node.role_metrics import RoleMetrics
from ledger.node.witness_loop import witness_loop
from ledger.portal.rotation import DeliveryKeySettings, DeliveryRotation
from ledger.portal.service import PortalService
from ledger.runtime.digest_settings import DigestSettings
from ledger.runtime.hub_map import MapSettings
from ledger.runtime.roles import WITNESS, RoleNode

__all__ = ["run_role"]

log = logging.getLogger("flagledger.node")


class Closeable(Protocol):
    def close(self) -> None: ...


def _stop_on_signals(seconds: float | None) -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if seconds:
        timer = threading.Timer(seconds, stop.set)
        timer.daemon = True
        timer.start()
    return stop


def run_role(
    node: RoleNode,
    seconds: float | None = None,
    log_format: str = "text",
    health_every: float = 30.0,
    metrics_port: int | None = None,
    metrics_host: str | None = None,
    start_http: Callable[[], Closeable] | None = None,
) -> dict[str, Any]:
    """Run the hub's, the portal's or a witness's loop until stopped; returns what it did. With a metrics port
    (``--metrics-port``, or config.json ``observability``/``FLAGLEDGER_METRICS_PORT``) it serves ``/metrics``,
    ``/healthz`` and ``/readyz`` (``ledger.node.role_metrics``). ``start_http``: the portal's page routes
    (``node --serve-port``, ``ledger.api.portal``), started beside the loop and closed when it stops — on their
    own port: the metrics port is the operators', the page routes face the public (behind TLS)."""
    configure_logging(log_format)
    observe = ObserveSettings.from_config(node.config, metrics_port=metrics_port, metrics_host=metrics_host)
    metrics = RoleMetrics(node.role)
    server = HealthServer(metrics, observe) if observe.metrics_port else None
    if server is not None:
        log.info("the %s serves /metrics, /healthz, /readyz on %s:%d", node.role, observe.metrics_host, server.port)
    settings = KafkaSettings.load(node.config.kafka)
    settings.check()
    topics = node.topics()
    made = ensure_inboxes(settings, topics, [node.keys.name])
    if made:
        log.info("made the %s's inbox topic %s", node.role, ", ".join(made))
    stop = _stop_on_signals(seconds)
    counts: Counter[str] = Counter()
    try:
        transport = KafkaTransport(settings, node.keys.name, topics)
    except BrokerUnavailable:
        metrics.down()
        if server is not None:
            server.close()
        raise
    http = start_http() if start_http is not None else None
    try:
        if node.role == HUB:
            _hub_loop(node, transport, stop, counts, health_every, metrics)
        elif node.role == WITNESS:
            witness_loop(node, transport, stop, counts, metrics)
        else:
            _portal_loop(node, transport, stop, counts, health_every, metrics)
    finally:
        if http is not None:
            http.close()
        transport.close()
        if server is not None:
            server.close()
    log.info("the %s stopped: %s", node.role, dict(counts))
    return {"role": node.role, **counts}


class _Health:
    def __init__(self, role: str, every: float, counts: Counter[str]) -> None:
        self.role, self.every, self.counts = role, every, counts
        self.last, self.then = Counter(counts), time.monotonic()

    def tick(self, **state: object) -> None:
        if time.monotonic() - self.then < self.every:
            return
        since = {k: v - self.last.get(k, 0) for k, v in self.counts.items()}
        log.info("%s alive: since the last report %s; %s", self.role, since, state)
        self.last, self.then = Counter(self.counts), time.monotonic()


def _hub_loop(
    node: RoleNode,
    transport: KafkaTransport,
    stop: threading.Event,
    counts: Counter[str],
    every: float,
    metrics: RoleMetrics,
) -> None:
    store = node.hub_store()
    stamp = node.directory_stamp()
    hub = HubService(
        store,
        transport,
        node.keys,
        node.directory(),
        rosters=HubRosters(store.engine),
        heads=_heads(node),
        digests=DigestSettings.from_linkage(node.config.linkage).schedule(),
        witnesses=tuple(node.config.linkage.get("witnesses", ())),  # their codes: each agency's heads forwarded
        # `linkage.open_workers` (default "auto"): a large poll never waits for them to spawn, and a SIGTERM's
        # stop closes them within a second (ledger.hub.openers), so they cost a stop nothing
        open_workers=_open_workers_setting(node.config.linkage),
    )
    feed = PortalFeed(store, node.keys, hub.directory)
    health = _Health(node.role, every, counts)
    log.info(
        "the hub's loop starts (%d parties known, digests %s)",
        len(hub.directory.sealing),
        "off" if hub.digests is None else f"every {hub.digests.every} s of {hub.digests.size} bytes",
    )
    try:
        while not stop.is_set():
            if node.directory_stamp() != stamp:
                stamp = node.directory_stamp()
                hub.directory = feed.directory = node.directory()
                log.info("the hub's directory was read again (%d parties known)", len(hub.directory.sealing))
            try:
                step = hub.step()
                if step.standby:
                    counts["standby"] += 1
                    metrics.standby()  # alive, not ready: another process leads (or this one lost the lease)
                    stop.wait(1.0)
                    continue
                counts.update(applied=step.applied, parked=step.parked, replays=step.replays, sent=step.sent)
                metrics.hub_step(hub)  # routing works: the portal's feed below may wait for its key, logged
                counts["pages_owed"] += feed.step()
                faultpoint("hub.fed")  # the portal's pages owed and committed, not yet sent
                if hub.digests is not None and hub.digests.due():
                    counts["digests"] += hub.tick()  # what the step and the feed owe, in this tick's digests
            except (StorageError, BrokerUnavailable) as exc:
                metrics.down()
                log.warning("the hub's loop will retry in 1 s: %s", exc)
                stop.wait(1.0)
            except FlagLedgerError as exc:  # e.g. the portal's key not yet imported: the feed waits for it
                log.warning("the hub cannot feed the portal yet: %s", exc)
                stop.wait(1.0)
            health.tick(leader=store.sequencer.leader, sequence=store.sequencer.last())
    finally:
        hub.close()  # its opening workers
        store.close()


def _open_workers_setting(linkage: Mapping[str, object]) -> int | None:
    """The hub's opening workers from config.json's ``linkage``: ``open_workers``, "auto" when absent."""
    return _open_workers(linkage.get("open_workers", "auto"))


def _open_workers(value: object) -> int | None:
    """``linkage.open_workers``: a count of processes, or "auto" (one per usable CPU, at most 4)."""
    if value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InputError(
        f'linkage.open_workers must be a count of processes (0: none) or "auto", not {value!r}',
        code=Code.CONFIGURATION,
    )


def _heads(node: RoleNode) -> MapHeads:
    """The flag map, its heads and routing proofs (issue #20), with the VRF key of the hub's key store."""
    assert node.vrf is not None  # open_role gives a hub its VRF key
    every = MapSettings.from_linkage(node.config.linkage).head_every_seconds
    return MapHeads(node.keys.signer, PersonKeyProver(node.vrf), every=timedelta(seconds=every))


def _portal_loop(
    node: RoleNode,
    transport: KafkaTransport,
    stop: threading.Event,
    counts: Counter[str],
    every: float,
    metrics: RoleMetrics,
) -> None:
    store = node.portal_store()
    stamp = node.directory_stamp()
    schedule = DigestSettings.from_linkage(node.config.linkage).schedule()
    wires = node.wire_keys()  # the providers' wire keys (issue 22, ledger.linkage.wire_keys)
    # its delivery keys rotated, announced and retired on the schedule of linkage.delivery_keys (issue 22)
    rotation = DeliveryRotation(
        wires, node.keys.signer, clock.now, DeliveryKeySettings.from_linkage(node.config.linkage)
    )
    portal = PortalService(
        store, transport, node.keys, node.directory(), digests=schedule, wires=wires, rotation=rotation
    )
    health = _Health(node.role, every, counts)
    log.info("the portal's loop starts")
    try:
        while not stop.is_set():
            if node.directory_stamp() != stamp:
                stamp = node.directory_stamp()
                portal.directory = node.directory()
                log.info("the portal's directory was read again")
            try:
                step = portal.step()
                counts.update(sent=step.sent, kept=step.kept, replays=step.replays, refused=step.refused)
                metrics.party_step(transport, counts["refused"], schedule)
            except (StorageError, BrokerUnavailable) as exc:
                metrics.down()
                log.warning("the portal's loop will retry in 1 s: %s", exc)
                stop.wait(1.0)
            except FlagLedgerError as exc:  # the hub's key not yet imported: a registration cannot be sent
                log.warning("the portal's loop will retry in 1 s: %s", exc)
                stop.wait(1.0)
            health.tick()
    finally:
        store.close()
        wires.close()
