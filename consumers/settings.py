"""Broker settings: from the data directory's config (``kafka`` section), overridden by the environment.

Broker-specific tuning (group timeouts, fetch wait) is configuration, not code: Tansu in tests wants short
group timeouts; Apache Kafka in production runs with its defaults or the operator's values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from ledger.config import NodeConfig
from ledger.errors import ConfigurationError

__all__ = ["KafkaSettings"]

ENV_PREFIX = "FLAGLEDGER_KAFKA_"


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "flagledger.events"
    dead_letter_topic: str = "flagledger.dead-letter"
    group_id: str = ""
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    fetch_max_wait_ms: int = 100
    security_protocol: str = "PLAINTEXT"
    delivery_timeout_ms: int = 120000  # a send not acknowledged by then fails and is retried from the position
    loss_check_seconds: int = 30  # how often the relay checks that the broker still holds what it published

    @classmethod
    def from_config(cls, config: NodeConfig) -> KafkaSettings:
        values: dict[str, Any] = dict(config.kafka)
        for f in fields(cls):
            env = os.environ.get(ENV_PREFIX + f.name.upper())
            if env is not None:
                values[f.name] = env
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown kafka settings: {', '.join(sorted(unknown))}")
        try:
            typed: dict[str, Any] = {
                f.name: int(values[f.name]) if f.type == "int" else str(values[f.name])
                for f in fields(cls)
                if f.name in values
            }
        except ValueError as exc:
            raise ConfigurationError(f"bad kafka setting: {exc}") from exc
        settings = cls(**typed)
        if not settings.group_id:
            settings = cls(**{**typed, "group_id": "flagledger-" + "-".join(sorted(a.code for a in config.agencies))})
        return settings
