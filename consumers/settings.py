"""Broker settings: from the data directory's config (``kafka`` section), overridden by the environment.

Broker-specific tuning (group timeouts, fetch wait) is configuration, not code: Tansu in tests wants short
group timeouts; Apache Kafka in production runs with its defaults or the operator's values.

Security (TLS, SASL/SCRAM or mTLS towards the inter-agency broker) is configuration too. The SASL password
is read from a file (``sasl_password_file``, a mounted secret), never from the config file or the
environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ledger.errors import ConfigurationError
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import read_secret_file
from ledger.settings import Section, section_config

__all__ = ["KafkaSettings"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaSettings(Section):
    model_config = section_config("FLAGLEDGER_KAFKA_")
    section: ClassVar[str] = "kafka"

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "flagledger.events"
    dead_letter_topic: str = "flagledger.dead-letter"
    group_id: str = ""
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    fetch_max_wait_ms: int = 100
    # the `node` loop relays, then polls for at most this long: a local event waits up to this before it is
    # published (figure "nationwide propagation"; it was 1000)
    poll_timeout_ms: int = 100
    # what a node creates when the topics are missing (`topics ensure` and the relay's first start)
    partitions: int = 1
    replication_factor: int = 1
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password_file: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""  # mTLS: this agency's client certificate
    ssl_keyfile: str = ""
    delivery_timeout_ms: int = 120000  # a send not acknowledged by then fails and is retried from the position
    loss_check_seconds: int = 30  # how often the relay checks that the broker still holds what it published

    @classmethod
    def from_config(cls, config: NodeConfig) -> KafkaSettings:
        settings = cls.load(config.kafka)
        if not settings.group_id:
            group = "flagledger-" + "-".join(sorted(a.code for a in config.agencies))
            settings = cls.load(config.kafka, group_id=group)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse a security configuration that kafka-python would only reject at the first connection."""
        if self.security_protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"kafka security_protocol {self.security_protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism not in MECHANISMS:
                raise ConfigurationError(
                    f"kafka security_protocol {self.security_protocol} needs sasl_mechanism "
                    f"({', '.join(MECHANISMS)}), got {self.sasl_mechanism!r}"
                )
            if not self.sasl_username or not self.sasl_password_file:
                raise ConfigurationError(
                    "kafka SASL needs sasl_username and sasl_password_file (FLAGLEDGER_KAFKA_SASL_USERNAME, "
                    "FLAGLEDGER_KAFKA_SASL_PASSWORD_FILE)"
                )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ConfigurationError("kafka mTLS needs both ssl_certfile and ssl_keyfile")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ConfigurationError("kafka partitions and replication_factor must be at least 1")

    def client_options(self) -> dict[str, Any]:
        """The connection and security keyword arguments every kafka-python client of a node gets."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                value = getattr(self, name)
                if value:
                    options[name] = value
        if self.security_protocol.startswith("SASL_"):
            password = read_secret_file(Path(self.sasl_password_file), "kafka SASL password")
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=password,
            )
        return options
