"""The inbox: the Kafka consumer loop (topic → ingest → projections → offset commit), faust style.

Offsets are committed only after the database commit; a poison message is parked (dead-letter topic and the
local ``parked_messages`` table, :mod:`consumers.parked`) and acknowledged so that it never blocks its partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from consumers.broker import BrokerUnavailable, ensure_topics, new_producer, retry_delay
from consumers.ingest import Outcome, PendingStore, ingest_many
from consumers.parked import park
from consumers.settings import KafkaSettings
from ledger.errors import StateConflict, StorageError
from ledger.faultpoint import faultpoint
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import refuse_in_hub_mode

__all__ = ["Consumer"]

log = logging.getLogger("flagledger.consumers")


class Consumer:
    def __init__(self, node: Node, settings: KafkaSettings, project: bool = True) -> None:
        """``project=False``: leave the projections to a :class:`~ledger.runtime.follower.Follower` (the node
        loop); readers catch up themselves, so nothing reads a view that misses an applied event."""
        from kafka import KafkaConsumer

        refuse_in_hub_mode(node.config, "ingest from the shared events topic")
        self.node = node
        self.settings = settings
        self.project = project
        self.pending = PendingStore(node.app, node.engine)
        self.pending.on_parked = lambda outcome, raw: self._park(outcome, raw, "released from ingest_pending")
        self.counts: dict[str, int] = {}
        self.incidents: dict[str, int] = {}  # incidents raised by this consumer, per kind (for the metric)
        self._dlq: Any = None
        self._reassigned: set[Any] = set()
        self._topic_id: Any = None  # the identity of the log our positions point into (None: not seen yet)
        self._from_start = False  # the log was replaced: (re)assigned partitions start over until the next commit
        self.rewinds = 0  # times this consumer started over because the broker lost the log (for node-status)
        self._next_identity_check = 0.0
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
        if self._log_replaced():
            self.rewind("the events topic was recreated (its topic id changed): the broker lost its data")
            return 0  # what this poll fetched may come from a position in the old log: it is fetched again
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

    def rewind(self, why: str) -> None:
        """Read every assigned partition again from the start: the broker lost the log our positions (and the
        group's committed offsets) point into, and a recreated log is republished from its first offset.

        Waiting for the broker to say so is not enough: Tansu answers a fetch past the end of a log with
        nothing, not OFFSET_OUT_OF_RANGE, so ``auto_offset_reset`` never fires, and once the new log grows
        past the old position the consumer reads on from there, skipping everything republished below it —
        a flag a peer never applies. Ingest skips what the ledger already holds, so starting over is safe.
        """
        self.rewinds += 1
        self._from_start = True
        assigned = sorted(self._consumer.assignment())
        for tp in assigned:
            self._consumer.seek_to_beginning(tp)
        log.warning("consume: %s; reading %s again from the start", why, assigned)

    def _log_replaced(self) -> bool:
        """Whether the topic's id changed since we last looked (a recreated topic), asking the broker every
        ``loss_check_seconds``: the client's metadata is otherwise refreshed only after an error, and a topic
        deleted and recreated under a living group causes none. kafka-python keeps topic ids (Kafka 2.8+, Tansu)
        only in its private cluster metadata; without them this answers False and the group's rejoin remains."""
        from kafka.errors import KafkaError

        if time.monotonic() >= self._next_identity_check:
            self._next_identity_check = time.monotonic() + self.settings.loss_check_seconds
            try:
                self._consumer.topics()  # a metadata refresh
            except KafkaError as exc:  # the broker is away: the poll itself deals with that; look again next time
                log.debug("consume: topic metadata refresh failed: %r", exc)
        cluster = getattr(self._consumer, "_cluster", None)
        topic_id = getattr(cluster, "topic_id", None)
        current = topic_id(self.settings.topic) if callable(topic_id) else None
        if current is None:
            return False
        previous, self._topic_id = self._topic_id, current
        return previous is not None and previous != current

    def _resume_from_committed(self) -> None:
        assigned, self._reassigned = set(self._reassigned), set()
        for tp in assigned:
            # after a lost log the group's offsets may point into the old one (a broker that kept them): start over
            committed = None if self._from_start else self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
        log.info("consume: assigned %s; resuming from the committed offsets (or the start)", sorted(assigned))

    def _commit(self) -> None:
        from kafka.errors import KafkaError

        try:
            self._consumer.commit()  # the positions of this poll: last processed + 1 per partition
            self._from_start = False  # the group's offsets are in the new log from now on
        except KafkaError as exc:  # a rebalance or a restarted broker: the group will redeliver, ingest dedupes
            self.counts["commit_failed"] = self.counts.get("commit_failed", 0) + 1
            log.warning("offset commit failed (%r): these records will be delivered again and skipped", exc)

    def _park(self, outcome: Outcome, raw: bytes, source: str) -> None:
        for incident in park(self.node, outcome, raw, source):
            self.incidents[incident.kind] = self.incidents.get(incident.kind, 0) + 1
        if self._dlq is None:
            self._dlq = new_producer(self.settings)
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
