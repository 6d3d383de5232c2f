"""The thin Kafka loops: relay (outbox → topic) and consumer (topic → ingest → commit), faust style.

Offsets are committed only after the database commit; a poison message is parked (dead-letter topic and
the local ``parked_messages`` table) and acknowledged so that it never blocks its partition.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import PersistenceError
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.revoked_acceptance import approved_acceptance
from consumers.settings import KafkaSettings
from ledger import clock
from ledger.bootstrap import Node
from ledger.domain.incidents import Incident
from ledger.errors import BrokerUnavailable, Code, SelfApprovalError, StateConflict, StorageError
from ledger.faultpoint import faultpoint
from ledger.incidents import ParkedMessage, raise_incidents
from projections.base import metadata, upsert

__all__ = ["BrokerUnavailable", "Consumer", "Relay", "ensure_topics", "park", "parked", "replay_parked"]

log = logging.getLogger("flagledger.consumers")

relay_position = Table(
    "relay_position",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Where the relay's last record landed in each partition, and its digest: if the broker no longer holds it
# there, the broker lost data (a memory broker restarted, a topic was deleted) and everything is republished.
relay_marks = Table(
    "relay_marks",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
)


parked_messages = Table(
    "parked_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("code", String(40), nullable=False),
    Column("reason", Text, nullable=False),  # it may quote a peer's header fields: never too long to park
    Column("source", String(200), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, default="parked"),
)


def _producer(settings: KafkaSettings) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        delivery_timeout_ms=settings.delivery_timeout_ms,
        request_timeout_ms=min(30000, settings.delivery_timeout_ms // 2),
        max_block_ms=settings.delivery_timeout_ms,
        **settings.client_options(),
    )


def ensure_topics(settings: KafkaSettings, partitions: int | None = None, replication: int | None = None) -> list[str]:
    """Create the events and dead-letter topics if missing (sizes default to the settings); returns those created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    from ledger.errors import ConfigurationError

    partitions = partitions or settings.partitions
    replication = replication or settings.replication_factor
    try:
        admin = KafkaAdminClient(**settings.client_options())
    except KafkaError as exc:
        raise ConfigurationError(
            f"cannot reach the Kafka brokers {settings.bootstrap_servers}: {exc}; check "
            "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS and the security settings, and that the brokers are up"
        ) from exc
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
    """Publishes the outbox in log order and records how far it got only after the broker acknowledged.

    Before publishing (and every ``loss_check_seconds`` after) it checks that the broker still holds the
    last record it acknowledged; if not, the broker lost data and the relay republishes from the start —
    peers skip what they already hold as duplicates, so this is always safe.
    """

    def __init__(self, node: Node, settings: KafkaSettings) -> None:
        self.node = node
        self.settings = settings
        self._producer: Any = None
        self._next_check = 0.0
        self.republished_after_loss = 0

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
            if position == 0:
                conn.execute(relay_marks.delete().where(relay_marks.c.topic == self.settings.topic))

    def _save(self, position: int, marks: dict[int, tuple[int, str]]) -> None:
        with self.node.engine.begin() as conn:
            upsert(conn, relay_position, [{"topic": self.settings.topic, "position": position}], ["topic"])
            rows = [
                {"topic": self.settings.topic, "partition": p, "offset": o, "digest": d}
                for p, (o, d) in marks.items()
            ]
            upsert(conn, relay_marks, rows, ["topic", "partition"])

    def marks(self) -> dict[int, tuple[int, str]]:
        with self.node.engine.connect() as conn:
            rows = conn.execute(
                select(relay_marks.c.partition, relay_marks.c.offset, relay_marks.c.digest).where(
                    relay_marks.c.topic == self.settings.topic
                )
            ).all()
        return {int(p): (int(o), str(d)) for p, o, d in rows}

    def broker_lost_data(self) -> bool:
        """Whether the record at each of our marks is gone or different (creates missing topics first)."""
        created = ensure_topics(self.settings)
        marks = self.marks()
        if not marks:
            return False
        if self.settings.topic in created:
            return True
        from kafka import KafkaConsumer, TopicPartition

        reader = KafkaConsumer(
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            **self.settings.client_options(),
        )
        try:
            for partition, (offset, digest) in marks.items():
                # read the record back (Tansu's ListOffsets is not reliable, and a position past the end
                # of a recreated log answers nothing): absent or different means the broker lost data
                tp = TopicPartition(self.settings.topic, partition)
                reader.assign([tp])
                reader.seek(tp, offset)
                found = None
                deadline = time.monotonic() + 3
                while found is None and time.monotonic() < deadline:
                    found = next((r for r in reader.poll(timeout_ms=200).get(tp, []) if r.offset == offset), None)
                if found is None or hashlib.sha256(bytes(found.value)).hexdigest() != digest:
                    return True
            return False
        finally:
            reader.close()

    def run_once(self, batch: int = 1000) -> int:
        from kafka.errors import KafkaError

        try:
            return self._publish(batch)
        except KafkaError as exc:  # a fresh producer next time: a restarted broker forgot this one's id
            self._drop_producer()
            raise BrokerUnavailable(
                f"publishing to {self.settings.bootstrap_servers} failed: {exc!r}; nothing is lost — the relay "
                "resumes from its saved position"
            ) from exc

    def _publish(self, batch: int) -> int:
        if self._producer is None or time.monotonic() >= self._next_check:
            if self.broker_lost_data():
                log.warning(
                    "relay: the broker no longer holds what it acknowledged (restarted memory broker or "
                    "deleted topic): republishing %s from the start",
                    self.settings.topic,
                )
                self.reset(0)
                self.republished_after_loss += 1
                self._drop_producer()  # the new broker does not know its producer id: sends would be refused
            self._next_check = time.monotonic() + self.settings.loss_check_seconds
        if self._producer is None:
            self._producer = _producer(self.settings)
        sent, start = 0, self.position()
        last = start
        # everything up to here is scanned below: the position may pass events that are not ours to publish
        # (other agencies' events, local-only ones), so the next round does not read them again
        scanned = self.node.app.max_position()
        pending: dict[str, tuple[Any, str]] = {}  # per key: the future of its latest record and its digest
        for position, origin, raw in publishable(self.node.app, last):
            future = self._producer.send(self.settings.topic, key=origin.encode(), value=raw)
            pending[origin] = (future, hashlib.sha256(raw).hexdigest())
            sent, last = sent + 1, position
            if sent % batch == 0:
                self._flush_and_save(last, pending)
        if pending:
            # one transaction per round (figure "nationwide propagation"): the acknowledged records' position
            # and everything scanned after them, which held nothing of ours to publish
            self._flush_and_save(max(last, scanned), pending)
            log.info("relay: published %d events up to position %d", sent, last)
        elif max(last, scanned) > start:
            self.reset(max(last, scanned))
        return sent

    def _flush_and_save(self, last: int, pending: dict[str, tuple[Any, str]]) -> None:
        self._producer.flush()
        marks: dict[int, tuple[int, str]] = {}
        for future, digest in pending.values():
            meta = future.get(timeout=30)  # raises the broker's error if this record was refused
            if meta.offset > marks.get(meta.partition, (-1, ""))[0]:
                marks[meta.partition] = (meta.offset, digest)
        faultpoint("relay.after_produce")
        self._save(last, marks)
        pending.clear()

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # closing a producer whose broker vanished may raise anything
                log.debug("relay: closing the old producer failed", exc_info=True)
        self._producer = None
        self._next_check = 0.0

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


class Consumer:
    def __init__(self, node: Node, settings: KafkaSettings, project: bool = True) -> None:
        """``project=False``: leave the projections to a :class:`~projections.follower.Follower` (the node
        loop); readers catch up themselves, so nothing reads a view that misses an applied event."""
        from kafka import KafkaConsumer

        self.node = node
        self.settings = settings
        self.project = project
        self.pending = PendingStore(node.app, node.engine)
        self.pending.on_parked = lambda outcome, raw: self._park(outcome, raw, "released from ingest_pending")
        self.counts: dict[str, int] = {}
        self.incidents: dict[str, int] = {}  # incidents raised by this consumer, per kind (for the metric)
        self._dlq: Any = None
        self._reassigned: set[Any] = set()
        ensure_topics(settings)  # subscribing to a topic that does not exist yet waits for a metadata refresh
        self._consumer = KafkaConsumer(
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            **settings.client_options(),
        )
        self._consumer.subscribe([settings.topic], listener=_reassignment_listener(self))

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Poll, ingest each record, catch up projections (if ``project``), then commit offsets. Returns records
        handled.

        If anything fails before the offsets are committed, the consumer is rewound to the start of this
        poll, so every record of it is delivered again (those already applied come back as duplicates)
        and the error is raised for the caller to retry: a record is never skipped in memory.
        """
        records = self._consumer.poll(timeout_ms=timeout_ms)
        if self._reassigned:
            self._resume_from_committed()
            return 0  # what this poll fetched may come from a stale position: it is fetched again
        handled = 0
        try:
            for tp, batch in records.items():
                for _ in batch:
                    faultpoint("consumer.polled")
                # one transaction for the poll's events (ingest_many decides each exactly as ingest would)
                outcomes = ingest_many(self.node.app, [bytes(r.value) for r in batch], self.pending)
                for record, outcome in zip(batch, outcomes, strict=True):
                    self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1
                    if outcome.kind == "parked":
                        self._park(outcome, bytes(record.value), f"{tp.topic}/{tp.partition}@{record.offset}")
                    handled += 1
            if handled and self.project:
                self.node.projector.catch_up()
        except BaseException as exc:
            for tp, batch in records.items():
                if batch:
                    self._consumer.seek(tp, batch[0].offset)
            if isinstance(exc, SQLAlchemyError | PersistenceError):
                raise StorageError(f"the database failed while ingesting: {exc}; the batch will be retried") from exc
            raise
        if handled:
            faultpoint("consumer.after_db_commit")
            self._commit()
        return handled

    def _resume_from_committed(self) -> None:
        assigned, self._reassigned = set(self._reassigned), set()
        for tp in assigned:
            committed = self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
        log.info("consume: assigned %s; resuming from the committed offsets (or the start)", sorted(assigned))

    def _commit(self) -> None:
        from kafka.errors import KafkaError

        try:
            self._consumer.commit()  # the positions of this poll: last processed + 1 per partition
        except KafkaError as exc:  # a rebalance or a restarted broker: the group will redeliver, ingest dedupes
            self.counts["commit_failed"] = self.counts.get("commit_failed", 0) + 1
            log.warning("offset commit failed (%r): these records will be delivered again and skipped", exc)

    def _park(self, outcome: Outcome, raw: bytes, source: str) -> None:
        for incident in park(self.node, outcome, raw, source):
            self.incidents[incident.kind] = self.incidents.get(incident.kind, 0) + 1
        if self._dlq is None:
            self._dlq = _producer(self.settings)
        self._dlq.send(
            self.settings.dead_letter_topic,
            value=raw,
            headers=[("reason", outcome.reason.encode()), ("code", outcome.code.encode()), ("source", source.encode())],
        )
        self._dlq.flush()
        log.warning("parked %s: [%s] %s", source, outcome.code, outcome.reason)

    def lag(self) -> int:
        """Messages on this member's assigned partitions not yet processed (end offset − position)."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return 0
        ends = self._consumer.end_offsets(assigned)
        return sum(max(int(ends.get(tp, 0)) - int(self._consumer.position(tp)), 0) for tp in assigned)

    def run(self, until: Callable[[], bool], timeout_ms: int = 1000) -> None:
        """Poll until ``until()``; a database or broker outage is logged and retried with backoff."""
        failures = 0
        while not until():
            try:
                self.poll_once(timeout_ms)
                failures = 0
            except (StorageError, StateConflict, BrokerUnavailable) as exc:
                failures += 1
                delay = retry_delay(failures)
                log.error("consume: %s [%s]; retrying in %.1f s", exc, exc.code, delay)
                time.sleep(delay)

    def close(self) -> None:
        self._consumer.close()
        if self._dlq is not None:
            self._dlq.close()


def _reassignment_listener(owner: Consumer) -> Any:
    """Notes every (re)assignment; :meth:`Consumer.poll_once` then resumes those partitions from the group's
    committed offsets, or from the start if the group has none.

    kafka-python keeps its in-memory position when it is handed the same partition again, so after a broker
    that lost its data comes back (a memory broker restarted, a topic recreated) it would resume at an offset
    of the *old* log and silently skip everything before it in the new one. Reading from the start instead is
    always safe: ingest skips what the ledger already holds as duplicates. (The callback runs on kafka-python's
    IO thread, where blocking calls such as ``committed()`` are refused: the work is done in ``poll_once``.)
    """
    from kafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        def on_partitions_assigned(self, assigned: Any) -> None:
            owner._reassigned.update(assigned)

    return Listener()


def park(node: Node, outcome: Outcome, raw: bytes, source: str) -> list[Incident]:
    """Keep a refused message in ``parked_messages`` (once: a redelivery finds its row) and raise the
    incidents it calls for (ledger/incidents.py; none for a fault, none twice). Returns the incidents raised now.

    The row is committed before any incident is raised: if raising fails, the caller's retry finds the row
    and raises them then.
    """
    with node.engine.begin() as conn:
        # redelivered after a crash before the offset commit: it is parked already, once is enough
        seen = conn.execute(
            select(parked_messages.c.id).where(
                (parked_messages.c.source == source) & (parked_messages.c.envelope == raw)
            )
        ).scalar()
        if seen is None:
            key = conn.execute(
                parked_messages.insert().values(
                    at=clock.now().isoformat(),
                    code=outcome.code,
                    reason=outcome.reason,
                    source=source,
                    envelope=raw,
                    status="parked",
                )
            ).inserted_primary_key
            assert key is not None
            seen = key[0]
    return raise_incidents(node, ParkedMessage(int(seen), outcome.code, outcome.reason, source, raw))


def parked(node: Node) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        rows = conn.execute(select(parked_messages).order_by(parked_messages.c.id)).mappings().all()
    return [{k: v for k, v in r.items() if k != "envelope"} for r in rows]


def replay_parked(node: Node, parked_id: int, *, accept_revoked_key: bool = False) -> Outcome:
    """Re-run one parked message after its cause was fixed (e.g. the agency's key is now trusted).

    ``accept_revoked_key``: two administrators approved applying exactly these bytes, signed by a key revoked
    since (:mod:`consumers.revoked_acceptance`); the message is then marked ``accepted_revoked`` rather than
    ``replayed``. Without a recorded approval it is refused and nothing is applied."""
    with node.engine.connect() as conn:
        row = conn.execute(select(parked_messages).where(parked_messages.c.id == parked_id)).mappings().first()
    if row is None:
        from ledger.errors import NotFoundError

        raise NotFoundError(f"no parked message {parked_id}")
    if accept_revoked_key and approved_acceptance(node.app, bytes(row["envelope"])) is None:
        raise SelfApprovalError(
            f"applying parked message {parked_id} under a revoked key needs two administrators: "
            f"`flagledger consumers replay {parked_id} --accept-revoked-key --as AGENCY/STAFF --note …`, then the "
            "same by a second administrator"
        )
    pending = PendingStore(node.app, node.engine)

    def park_released(refused: Outcome, released: bytes) -> None:
        park(node, refused, released, "released from ingest_pending")

    pending.on_parked = park_released
    raw = bytes(row["envelope"])
    outcome = ingest(node.app, raw, pending, accept_revoked_key=accept_revoked_key)
    if outcome.kind == "parked":  # still refused, perhaps for a new reason (an agency held since, a fork)
        raise_incidents(node, ParkedMessage(parked_id, outcome.code, outcome.reason, str(row["source"]), raw))
    if outcome.kind in ("applied", "duplicate", "held_gap"):
        status = "accepted_revoked" if accept_revoked_key and row["code"] == Code.REVOKED_KEY_LATE else "replayed"
        with node.engine.begin() as conn:
            conn.execute(parked_messages.update().where(parked_messages.c.id == parked_id).values(status=status))
        node.projector.catch_up()
    elif (outcome.code, outcome.reason) != (row["code"], row["reason"]):
        # parked again for another cause (e.g. its key is trusted now, but its signer does not own the stream)
        with node.engine.begin() as conn:
            conn.execute(parked_messages.update().where(parked_messages.c.id == parked_id)
                         .values(code=outcome.code, reason=outcome.reason[:2000]))
    return outcome


def retry_delay(failures: int) -> float:
    return float(min(30.0, 0.5 * 2 ** min(failures - 1, 6)))


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
