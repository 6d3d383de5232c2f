"""The linkage :class:`~ledger.linkage.transport.Transport` on Kafka: one topic per inbox (``PREFIX.hub``,
``PREFIX.inbox.PARTY``), the sealed bytes as the record value, the sender's name as the record key (so one
sender's messages keep their order on a topic of several partitions; the routing header names the sender
anyway), no record headers.

A party's consumer is *assigned* the partitions of its own inbox topic and nothing else (no subscription
pattern, no group rebalancing that could hand it another topic); its group (``PREFIX.PARTY``) keeps the
committed offsets. In production the broker enforces the same with ACLs: each agency's principal may read its
own inbox topic and its group, and write the hub's topic (docs/linkage.md).

A broker that lost its data (a memory broker restarted, a topic deleted and recreated): every
``loss_check_seconds`` the transport looks at its inbox topic — gone, it makes it again; recreated (another topic
id) or with other partitions, it is assigned all of them and reads them from the start (a position left in the old
log would skip the new log's first messages: Tansu answers a fetch past the end with nothing). After a failed
send, or once its own inbox was found gone, the transport makes each inbox it sends to if missing before its next
send there (a topic the broker made on the fly would have the broker's partition count: a reader assigned the
old partitions would miss the others until its next check), and a failed send renews the producer (an
idempotent producer's id is unknown to a restarted broker). Messages the broker held and lost are not sent again here.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from consumers.broker import new_producer
from consumers.settings import KafkaSettings
from ledger.errors import BrokerUnavailable, ConfigurationError
from ledger.linkage.names import check_party
from ledger.linkage.transport import Delivery, Topics, Transport, check_route

__all__ = ["KafkaTransport", "ensure_inboxes"]

log = logging.getLogger("flagledger.linkage")


def ensure_inboxes(settings: KafkaSettings, topics: Topics, parties: list[str], partitions: int = 1) -> list[str]:
    """Create the inbox topics of ``parties`` if missing (an operator's job in production); returns those made."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(**settings.client_options())
    except KafkaError as exc:
        raise ConfigurationError(f"cannot reach the Kafka brokers {settings.bootstrap_servers}: {exc}") from exc
    made = []
    try:
        existing = set(admin.list_topics())
        for name in (topics.inbox(p) for p in parties):
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions, settings.replication_factor)])
                made.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return made


class KafkaTransport:
    """``party``'s end of the linkage on the brokers of ``settings`` (their security settings included)."""

    def __init__(self, settings: KafkaSettings, party: str, topics: Topics | None = None) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        self.party = check_party(party)
        self.topics = topics or Topics()
        self.inbox = self.topics.inbox(party)
        self.settings = settings
        self._pending: list[Any] = []
        self._ensured: set[str] = set()  # inbox topics known to exist since the broker may have lost them
        self._doubt = False  # a send failed or the own inbox was gone: make sure an inbox exists before sending
        self._inbox_id: Any = None  # the identity of the log our positions point into (None: not seen yet)
        self._next_check = 0.0
        self.losses = 0  # times the inbox was found made again (the broker lost its data): read from the start
        self._rewound = False  # a rewind is owed (it failed: the broker was unreachable); done before a poll
        try:
            self._producer = new_producer(settings)
            self._consumer = KafkaConsumer(
                group_id=f"{self.topics.prefix}.{party}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                **settings.client_options(),
            )
            partitions = self._consumer.partitions_for_topic(self.inbox)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot open {party}'s linkage transport: {exc}") from exc
        if not partitions:
            self.close()
            raise ConfigurationError(f"the inbox topic {self.inbox} does not exist: create it first (ensure_inboxes)")
        self._consumer.assign([TopicPartition(self.inbox, p) for p in sorted(partitions)])

    def send(self, recipient: str, message: bytes) -> None:
        from kafka.errors import KafkaError

        check_route(self.party, recipient)
        topic = self.topics.inbox(recipient)
        if self._doubt and topic not in self._ensured:
            try:
                ensure_inboxes(self.settings, self.topics, [recipient])
            except (ConfigurationError, KafkaError) as exc:  # e.g. not allowed to make it: an operator's job then
                raise BrokerUnavailable(f"cannot make sure {recipient}'s inbox exists: {exc}") from exc
            self._ensured.add(topic)
        try:
            self._pending.append(self._producer.send(topic, key=self.party.encode(), value=bytes(message)))
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot send to {recipient}'s inbox: {exc}") from exc

    def flush(self) -> None:
        from kafka.errors import KafkaError

        pending, self._pending = self._pending, []
        try:
            self._producer.flush()
        except KafkaError as exc:
            self._renew()
            raise BrokerUnavailable(f"the broker did not take the messages sent: {exc}") from exc
        failed = [f.exception for f in pending if f.failed()]
        if failed:
            self._renew()
            raise BrokerUnavailable(f"{len(failed)} of {len(pending)} messages were not stored: {failed[0]!r}")

    def _renew(self) -> None:
        """After a failed send: a new producer (a restarted broker refuses the old one's idempotent id), and the
        inboxes checked again before the next send (a restarted memory broker has none)."""
        from kafka.errors import KafkaError

        self._ensured.clear()
        self._doubt = True
        with suppress(KafkaError):
            self._producer.close(timeout=1)
        try:
            self._producer = new_producer(self.settings)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot open a producer for {self.party}: {exc}") from exc

    def _check_inbox(self) -> None:
        """Every ``loss_check_seconds``: the inbox made again if gone; read from the start if it was made again
        (another topic id) — see the module."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        if time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + self.settings.loss_check_seconds
        try:
            self._consumer.topics()  # a metadata refresh: kafka-python refreshes it only after an error otherwise
            partitions = self._consumer.partitions_for_topic(self.inbox)
            if not partitions:
                self._ensured.clear()
                self._doubt = True
                ensure_inboxes(self.settings, self.topics, [self.party])
                self._consumer.topics()
                partitions = self._consumer.partitions_for_topic(self.inbox)
        except (KafkaError, ConfigurationError) as exc:  # the broker is away: the poll deals with it, look again
            log.debug("%s: inbox check failed: %r", self.party, exc)
            return
        if not partitions:
            return
        cluster = getattr(self._consumer, "_cluster", None)
        topic_id = getattr(cluster, "topic_id", None)
        current = topic_id(self.inbox) if callable(topic_id) else None
        replaced = current is not None and self._inbox_id is not None and current != self._inbox_id
        assigned = {tp.partition for tp in self._consumer.assignment()}
        if replaced or set(partitions) != assigned:
            parts = [TopicPartition(self.inbox, p) for p in sorted(partitions)]
            self._consumer.assign(parts)
            for tp in parts:
                if replaced or tp.partition not in assigned:
                    self._consumer.seek_to_beginning(tp)
            if replaced:
                self.losses += 1
                self._ensured.clear()
                self._doubt = True
                log.warning("%s: the inbox %s was made again (the broker lost its data): read from its start",
                            self.party, self.inbox)  # fmt: skip
        if current is not None:
            self._inbox_id = current

    def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Delivery]:
        from kafka.errors import KafkaError

        if self._rewound:
            self.rewind()
        self._check_inbox()
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot read {self.party}'s inbox: {exc}") from exc
        return [
            Delivery(r.topic, r.partition, r.offset, bytes(r.value))
            for tp in sorted(batches, key=lambda tp: tp.partition)
            for r in batches[tp]
        ]

    def commit(self) -> None:
        from kafka.errors import KafkaError

        try:
            self._consumer.commit()
        except KafkaError as exc:  # the next transport opened for the party is handed these again
            raise BrokerUnavailable(f"cannot commit {self.party}'s inbox position: {exc}") from exc

    def rewind(self) -> None:
        """Seek back to the committed offsets (the start of the inbox if the group has none): kafka-python keeps
        its position after what it returned, and the next poll would go on after messages never applied. If the
        broker cannot say, the rewind is owed and done before the next poll, which raises until it is."""
        from kafka.errors import KafkaError

        self._rewound = True
        try:
            for tp in self._consumer.assignment():
                offset = self._consumer.committed(tp)
                if offset is None:
                    self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, offset)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot rewind {self.party}'s inbox to its committed position: {exc}") from exc
        self._rewound = False

    def lag(self) -> int:
        """Messages in the inbox not yet read: end offset - position, over its partitions (the inbox depth)."""
        from kafka.errors import KafkaError

        parts = list(self._consumer.assignment())
        try:
            ends = self._consumer.end_offsets(parts)
            return sum(max(0, int(ends[tp]) - int(self._consumer.position(tp))) for tp in parts)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot read {self.party}'s inbox depth: {exc}") from exc

    def assignment(self) -> set[str]:
        """The topics this party's consumer reads (its inbox, nothing else)."""
        return {tp.topic for tp in self._consumer.assignment()}

    def close(self) -> None:
        self._producer.close()
        self._consumer.close(autocommit=False)


if TYPE_CHECKING:  # mypy --strict holds the Kafka transport to the interface
    _KAFKA: type[Transport] = KafkaTransport
