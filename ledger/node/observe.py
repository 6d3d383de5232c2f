"""What a running ``flagledger node`` tells its operators: Prometheus metrics, health probes, structured logs.

The node's loop is single-threaded (a KafkaConsumer is not thread-safe), so the loop itself takes a snapshot
of every figure (:meth:`NodeMetrics.update`) and the HTTP thread only serves what the loop last stored:
a scrape never touches the database or the broker.

Endpoints (one port, ``metrics_port``): ``/metrics`` (Prometheus text format), ``/healthz`` (liveness: the loop
ran within ``liveness_seconds``), ``/readyz`` (readiness: the loop completed a round trip to the database and the
broker and is not stale).

Settings come from the data directory's ``observability`` section, overridden by ``FLAGLEDGER_METRICS_PORT``,
``FLAGLEDGER_METRICS_HOST``, ``FLAGLEDGER_LOG_FORMAT`` (``text``/``json``) and ``FLAGLEDGER_LIVENESS_SECONDS``,
overridden in turn by the ``node`` command's options.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ledger.app.checkpoints import latest_checkpoint
from ledger.domain.incidents import IncidentKind
from ledger.errors import ConfigurationError, NotFoundError
from ledger.runtime.config import NodeConfig
from ledger.settings import Section, section_config

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from sqlalchemy import Connection

    from consumers.inbox import Consumer
    from consumers.outbox import Relay
    from ledger.runtime.bootstrap import Node

__all__ = [
    "HealthServer",
    "NodeMetrics",
    "ObserveSettings",
    "configure_logging",
    "latest_checkpoint_time",
    "open_incidents",
]

REVIEW_WINDOW_DAYS = 30  # as the work queue's "reviews due"


class ObserveSettings(Section):
    model_config = section_config("FLAGLEDGER_", env_ignore_empty=True)
    section: ClassVar[str] = "observability"

    metrics_port: int = 0  # 0: no HTTP endpoint
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    liveness_seconds: int = 120

    @classmethod
    def from_config(cls, config: NodeConfig | None, **overrides: Any) -> ObserveSettings:
        settings = cls.load(config.observability if config is not None else None, **overrides)
        if settings.log_format not in ("text", "json"):
            raise ConfigurationError(f"log_format must be text or json, not {settings.log_format!r}")
        if not 0 <= settings.metrics_port < 65536:
            raise ConfigurationError(f"metrics_port {settings.metrics_port} is not a TCP port")
        return settings


# -- logs -------------------------------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers; never carries event payloads, only what the message says."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def latest_checkpoint_time(node: Node) -> datetime | None:
    """When a hosted agency last signed a checkpoint (verified), or None before the first one."""
    try:
        return latest_checkpoint(node.app).timestamp
    except NotFoundError:
        return None


def open_incidents(conn: Connection, agencies: list[str]) -> dict[str, int]:
    """Open (unacknowledged) incidents per agency, as projected (projections/incidents.py)."""
    from sqlalchemy import func, select

    from projections.incidents import incidents

    rows = conn.execute(
        select(incidents.c.agency, func.count())
        .where(incidents.c.status == "open", incidents.c.agency.in_(agencies))
        .group_by(incidents.c.agency)
    ).all()
    return {str(a): int(n) for a, n in rows}


# -- metrics -------------------------------------------------------------------------------------------------
class NodeMetrics:
    """Gauges of one node, in a registry of its own (several nodes may run in one test process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry: CollectorRegistry = CollectorRegistry()
        r = self.registry
        self.log_head = Gauge("flagledger_log_head_position", "Position of the last event in the local log", registry=r)
        self.relay_lag = Gauge(
            "flagledger_relay_lag_events", "Shareable events of this node's agencies not yet published", registry=r
        )
        self.consumer_lag = Gauge(
            "flagledger_consumer_lag_messages",
            "Messages on this node's assigned partitions not yet processed (end offset - position)",
            registry=r,
        )
        self.projection_lag = Gauge(
            "flagledger_projection_lag_events", "Events the slowest projection is behind the log", registry=r
        )
        self.ingested = Counter(
            "flagledger_ingested_messages",
            "Messages ingested from other agencies, by outcome",
            ["outcome"],
            registry=r,
        )
        self.parked = Gauge(
            "flagledger_parked_messages",
            "Poison messages parked and not replayed (see `consumers parked`)",
            registry=r,
        )
        self.held = Gauge(
            "flagledger_held_requests_waiting",
            "Provision requests held for a manual decision",
            ["agency"],
            registry=r,
        )
        self.reviews = Gauge(
            "flagledger_reviews_due",
            f"Active flags whose review date is within {REVIEW_WINDOW_DAYS} days or past",
            ["agency"],
            registry=r,
        )
        self.incidents_raised = Counter(
            "flagledger_incidents_raised",
            "Security incidents raised from parked messages (forged signature, fork, foreign writer, revoked key "
            "used late), by kind; one per message and alerted agency",
            ["kind"],
            registry=r,
        )
        for kind in IncidentKind:  # every kind is exported from the start, so an alert rule sees 0 before 1
            self.incidents_raised.labels(kind.value)
        self.incidents_open = Gauge(
            "flagledger_incidents_open",
            "Security incidents not yet acknowledged, per alerted agency",
            ["agency"],
            registry=r,
        )
        self.last_loop = Gauge(
            "flagledger_last_loop_timestamp_seconds", "When the node loop last completed a round", registry=r
        )
        self._checkpoint_age: Gauge | None = None
        self._views_audit: tuple[Gauge, Gauge, Gauge, Gauge] | None = None
        self._counted: dict[str, int] = {}
        self._raised: dict[str, int] = {}
        self.lock = threading.Lock()
        self.last_round = 0.0  # monotonic
        self.ready = False

    def update(self, node: Node, relay: Relay, consumer: Consumer, today: date | None = None) -> None:
        """Take a snapshot (called from the node loop, between polls)."""
        from sqlalchemy import func, select

        from consumers.outbox import publishable
        from ledger.runtime.tables import parked_messages
        from projections.flag_state import agency_flags
        from projections.queues import held_queue

        head = node.app.max_position()
        hosted = sorted(node.app.hosted)
        day = today or node.app.clock().date()
        limit = (day + timedelta(days=REVIEW_WINDOW_DAYS)).isoformat()
        with node.engine.connect() as conn:
            held: dict[str, int] = dict(
                (str(a), int(n))
                for a, n in conn.execute(
                    select(held_queue.c.provider, func.count())
                    .where(held_queue.c.status == "held", held_queue.c.provider.in_(hosted))
                    .group_by(held_queue.c.provider)
                ).all()
            )
            reviews: dict[str, int] = dict(
                (str(a), int(n))
                for a, n in conn.execute(
                    select(agency_flags.c.agency, func.count())
                    .where(
                        agency_flags.c.agency.in_(hosted),
                        agency_flags.c.active.is_(True),
                        agency_flags.c.review_date.is_not(None),
                        agency_flags.c.review_date <= limit,
                    )
                    .group_by(agency_flags.c.agency)
                ).all()
            )
            parked = conn.execute(
                select(func.count()).select_from(parked_messages).where(parked_messages.c.status == "parked")
            ).scalar_one()
            alerts = open_incidents(conn, hosted)
        positions = node.projector.positions()
        checkpoint = latest_checkpoint_time(node)
        lag = consumer.lag()
        unpublished = sum(1 for _ in publishable(node.app, relay.position()))
        with self.lock:
            self.log_head.set(head)
            self.relay_lag.set(unpublished)
            self.consumer_lag.set(lag)
            self.projection_lag.set(max([head - p for p in positions.values()] + [0]))
            for outcome, n in consumer.counts.items():
                delta = n - self._counted.get(outcome, 0)
                if delta > 0:
                    self.ingested.labels(outcome).inc(delta)
                self._counted[outcome] = n
            self.parked.set(int(parked))
            for kind, n in consumer.incidents.items():
                delta = n - self._raised.get(kind, 0)
                if delta > 0:
                    self.incidents_raised.labels(kind).inc(delta)
                self._raised[kind] = n
            for code in hosted:
                self.held.labels(code).set(int(held.get(code, 0)))
                self.reviews.labels(code).set(int(reviews.get(code, 0)))
                self.incidents_open.labels(code).set(alerts.get(code, 0))
            if checkpoint is not None:
                self._checkpoint_gauge().set((datetime.now(UTC) - checkpoint).total_seconds())
            self.last_loop.set(time.time())
            self.last_round = time.monotonic()
            self.ready = True

    def views_audit(self, last: dict[str, Any] | None) -> None:
        """The last scheduled ``audit views`` (ledger.runtime.views_audit); the gauges appear with the first result."""
        if last is None:
            return
        from prometheus_client import Gauge

        with self.lock:
            if self._views_audit is None:
                r = self.registry
                self._views_audit = (
                    Gauge(
                        "flagledger_views_audit_ok",
                        "1: the last `audit views` found every view equal to a rebuild from the log; 0: it found a "
                        "difference or failed",
                        registry=r,
                    ),
                    Gauge(
                        "flagledger_views_audit_difference",
                        "1: the last `audit views` found a view row that differs from the log (see node-status.json)",
                        registry=r,
                    ),
                    Gauge(
                        "flagledger_views_audit_last_run_timestamp_seconds",
                        "When the last `audit views` finished",
                        registry=r,
                    ),
                    Gauge(
                        "flagledger_views_audit_duration_seconds", "How long the last `audit views` took", registry=r
                    ),
                )
            ok, difference, finished, seconds = self._views_audit
            ok.set(1 if last.get("result") == "equal" else 0)
            difference.set(1 if last.get("result") == "different" else 0)
            finished.set(datetime.fromisoformat(str(last["finished_at"])).timestamp())
            seconds.set(float(last.get("seconds") or 0.0))

    def _checkpoint_gauge(self) -> Any:
        if self._checkpoint_age is None:
            from prometheus_client import Gauge

            self._checkpoint_age = Gauge(
                "flagledger_checkpoint_age_seconds",
                "Seconds since this node's agencies last signed a checkpoint (absent until checkpoints are enabled)",
                registry=self.registry,
            )
        return self._checkpoint_age

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        with self.lock:
            return bytes(generate_latest(self.registry))

    def health(self, liveness_seconds: int) -> tuple[bool, bool]:
        """(alive, ready): alive until the loop has been stuck for ``liveness_seconds``; ready once it ran."""
        with self.lock:
            if not self.last_round:
                return True, False  # still starting: alive, not ready
            fresh = time.monotonic() - self.last_round < liveness_seconds
            return fresh, self.ready and fresh


class Served(Protocol):
    """What the health server serves: :class:`NodeMetrics`, or a linkage party's
    (``ledger.node.role_metrics.RoleMetrics``)."""

    def render(self) -> bytes: ...

    def health(self, liveness_seconds: int) -> tuple[bool, bool]: ...


class HealthServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread; :meth:`close` stops it."""

    def __init__(self, metrics: Served, settings: ObserveSettings) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                alive, ready = metrics.health(settings.liveness_seconds)
                if self.path.startswith("/metrics"):
                    code, body, ctype = 200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8"
                elif self.path.startswith("/healthz"):
                    code, body, ctype = (200 if alive else 503), (b"ok\n" if alive else b"stale\n"), "text/plain"
                elif self.path.startswith("/readyz"):
                    code, body, ctype = (200 if ready else 503), (b"ready\n" if ready else b"not ready\n"), "text/plain"
                else:
                    code, body, ctype = 404, b"not found\n", "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        try:
            self.httpd = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), Handler)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}; "
                "choose another FLAGLEDGER_METRICS_PORT (or --metrics-port)"
            ) from exc
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="flagledger-metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
