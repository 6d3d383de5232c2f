"""What the relay and the consumer share about the broker: a producer, the topics, and retry pacing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from consumers.settings import KafkaSettings
from ledger.errors import BrokerUnavailable

__all__ = ["BrokerUnavailable", "ensure_topics", "new_producer", "retry_delay", "wait_for"]


def new_producer(settings: KafkaSettings) -> Any:
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

    partitions = partitions or settings.partitions
    replication = replication or settings.replication_factor
    try:
        admin = KafkaAdminClient(**settings.client_options())
    except KafkaError as exc:
        # BrokerUnavailable, not a configuration error: a running node's relay checks the topics during a broker
        # outage too, and its loop retries this (a ConfigurationError stopped the node after 30 s of outage)
        raise BrokerUnavailable(
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


def retry_delay(failures: int) -> float:
    return float(min(30.0, 0.5 * 2 ** min(failures - 1, 6)))


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
