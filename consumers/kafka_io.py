"""The thin Kafka loops: relay (outbox → topic) and consumer (topic → ingest → commit), faust style.

Offsets are committed only after the database commit; a poison message is parked (dead-letter topic and
the local ``parked_messages`` table) and acknowledged so that it never blocks its partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Table, select

from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.settings import KafkaSettings
from ledger.bootstrap import Node
from projections.base import metadata, upsert

__all__ = ["Consumer", "Relay", "ensure_topics", "parked", "replay_parked"]

log = logging.getLogger("flagledger.consumers")

relay_position = Table(
    "relay_position",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

parked_messages = Table(
    "parked_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("code", String(40), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("source", String(200), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, default="parked"),
)


def _producer(settings: KafkaSettings) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        security_protocol=settings.security_protocol,
        linger_ms=5,
    )


def ensure_topics(settings: KafkaSettings, partitions: int = 1, replication: int = 1) -> list[str]:
    """Create the events and dead-letter topics if missing; returns the ones created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, security_protocol=settings.security_protocol)
    created = []
    try:
        existing = set(admin.list_topics())
        for name in (settings.topic, settings.dead_letter_topic):
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions, replication)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


class Relay:
    """Publishes the outbox in log order and records how far it got only after the broker acknowledged."""

    def __init__(self, node: Node, settings: KafkaSettings) -> None:
        self.node = node
        self.settings = settings
        self._producer: Any = None

    def position(self) -> int:
        with self.node.engine.connect() as conn:
            pos = conn.execute(
                select(relay_position.c.position).where(relay_position.c.topic == self.settings.topic)
            ).scalar()
        return int(pos or 0)

    def reset(self, position: int = 0) -> None:
        """Republish from ``position`` (e.g. after the broker lost its data); ingest de-duplicates."""
        with self.node.engine.begin() as conn:
            upsert(conn, relay_position, [{"topic": self.settings.topic, "position": position}], ["topic"])

    def run_once(self, batch: int = 1000) -> int:
        if self._producer is None:
            ensure_topics(self.settings)
            self._producer = _producer(self.settings)
        sent, last = 0, self.position()
        for position, origin, raw in publishable(self.node.app, last):
            self._producer.send(self.settings.topic, key=origin.encode(), value=raw)
            sent, last = sent + 1, position
            if sent % batch == 0:
                self._producer.flush()
                self.reset(last)
        if sent:
            self._producer.flush()
            self.reset(last)
            log.info("relay: published %d events up to position %d", sent, last)
        return sent

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


class Consumer:
    def __init__(self, node: Node, settings: KafkaSettings) -> None:
        from kafka import KafkaConsumer

        self.node = node
        self.settings = settings
        self.pending = PendingStore(node.app, node.engine)
        self.counts: dict[str, int] = {}
        self._dlq: Any = None
        ensure_topics(settings)  # subscribing to a topic that does not exist yet waits for a metadata refresh
        self._consumer = KafkaConsumer(
            settings.topic,
            bootstrap_servers=settings.bootstrap_servers,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            security_protocol=settings.security_protocol,
        )

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Poll, ingest each record, catch up projections, then commit offsets. Returns records handled."""
        records = self._consumer.poll(timeout_ms=timeout_ms)
        handled = 0
        for tp, batch in records.items():
            # one transaction for the poll's events (ingest_many decides each exactly as ingest would)
            outcomes = ingest_many(self.node.app, [bytes(r.value) for r in batch], self.pending)
            for record, outcome in zip(batch, outcomes, strict=True):
                self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1
                if outcome.kind == "parked":
                    self._park(outcome, bytes(record.value), f"{tp.topic}/{tp.partition}@{record.offset}")
                handled += 1
        if handled:
            self.node.projector.catch_up()
            self._consumer.commit()  # the positions of this poll: last processed + 1 per partition
        return handled

    def _park(self, outcome: Outcome, raw: bytes, source: str) -> None:
        with self.node.engine.begin() as conn:
            conn.execute(
                parked_messages.insert().values(
                    at=datetime.now(UTC).isoformat(),
                    code=outcome.code,
                    reason=outcome.reason,
                    source=source,
                    envelope=raw,
                    status="parked",
                )
            )
        if self._dlq is None:
            self._dlq = _producer(self.settings)
        self._dlq.send(
            self.settings.dead_letter_topic,
            value=raw,
            headers=[("reason", outcome.reason.encode()), ("code", outcome.code.encode()), ("source", source.encode())],
        )
        self._dlq.flush()
        log.warning("parked %s: [%s] %s", source, outcome.code, outcome.reason)

    def run(self, until: Callable[[], bool], timeout_ms: int = 1000) -> None:
        while not until():
            self.poll_once(timeout_ms)

    def close(self) -> None:
        self._consumer.close()
        if self._dlq is not None:
            self._dlq.close()


def parked(node: Node) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        rows = conn.execute(select(parked_messages).order_by(parked_messages.c.id)).mappings().all()
    return [{k: v for k, v in r.items() if k != "envelope"} for r in rows]


def replay_parked(node: Node, parked_id: int) -> Outcome:
    """Re-run one parked message after its cause was fixed (e.g. the agency's key is now trusted)."""
    with node.engine.connect() as conn:
        row = conn.execute(select(parked_messages).where(parked_messages.c.id == parked_id)).mappings().first()
    if row is None:
        from ledger.errors import NotFoundError

        raise NotFoundError(f"no parked message {parked_id}")
    outcome = ingest(node.app, bytes(row["envelope"]), PendingStore(node.app, node.engine))
    if outcome.kind in ("applied", "duplicate", "held_gap"):
        with node.engine.begin() as conn:
            conn.execute(parked_messages.update().where(parked_messages.c.id == parked_id).values(status="replayed"))
        node.projector.catch_up()
    return outcome


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
