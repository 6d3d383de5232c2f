"""Settings come from config.json, then the environment, then a command's options; a value that cannot be read
stops the node with a message naming the setting (and where to set it), never the value or a pydantic traceback.

Threat: the administrator's typo or a stale environment variable (a node that starts with another setting than
the one written, or prints a secret-bearing value into its logs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.settings import KafkaSettings
from ledger.api.settings import HttpSettings
from ledger.app.checkpoints import CheckpointSettings
from ledger.capacity import Capacity
from ledger.errors import ConfigurationError
from ledger.node.observe import ObserveSettings
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import KeySettings


def test_the_environment_overrides_the_file_and_an_option_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = NodeConfig(
        data_dir=tmp_path,
        kafka={"topic": "from-file", "partitions": 3},
        capacity={"pool_size": 5},
        observability={"log_format": "json"},
    )
    config.save()
    loaded = NodeConfig.load(tmp_path)
    assert KafkaSettings.from_config(loaded).topic == "from-file"
    monkeypatch.setenv("flagledger_kafka_topic", "look-alike")
    assert KafkaSettings.from_config(loaded).topic == "from-file", "only the exact name (the demo clears those)"
    monkeypatch.setenv("FLAGLEDGER_KAFKA_TOPIC", "from-env")
    kafka = KafkaSettings.from_config(loaded)
    assert (kafka.topic, kafka.partitions) == ("from-env", 3), "only the variable set overrides"
    monkeypatch.setenv("FLAGLEDGER_DATABASE_POOL_SIZE", "6")
    assert Capacity.from_config(loaded).pool_size == 6
    assert Capacity.from_config(loaded, pool_size=7).pool_size == 7
    monkeypatch.setenv("FLAGLEDGER_DATABASE_POOL_SIZE", "")  # empty: not set, as before
    assert Capacity.from_config(loaded).pool_size == 5
    monkeypatch.setenv("FLAGLEDGER_LOG_FORMAT", "text")
    assert ObserveSettings.from_config(loaded).log_format == "text"
    assert ObserveSettings.from_config(loaded, log_format="json").log_format == "json"
    assert KafkaSettings(topic="direct").topic == "direct", "a settings value made in code reads no environment"


def test_the_node_environment_overrides_config_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    NodeConfig(data_dir=tmp_path, database_url=None, encryption=False).save()
    assert NodeConfig.load(tmp_path).database_url is None
    monkeypatch.setenv("FLAGLEDGER_DATABASE_URL", "postgresql://agency_a@db:5432/agency_a")
    monkeypatch.setenv("FLAGLEDGER_ENCRYPTION", "on")
    loaded = NodeConfig.load(tmp_path)
    assert loaded.database_url == "postgresql://agency_a@db:5432/agency_a" and loaded.encryption
    monkeypatch.setenv("FLAGLEDGER_ENCRYPTION", "ture")
    assert NodeConfig.load(tmp_path).encryption, "a typo never switches at-rest encryption off"
    monkeypatch.setenv("FLAGLEDGER_ENCRYPTION", "off")
    assert not NodeConfig.load(tmp_path).encryption


@pytest.mark.parametrize(
    ("load", "words"),
    [
        (lambda c: Capacity.from_config(c), "bad capacity setting pool_size (FLAGLEDGER_DATABASE_POOL_SIZE)"),
        (lambda c: KafkaSettings.from_config(c), "bad kafka setting partitions (FLAGLEDGER_KAFKA_PARTITIONS)"),
        (lambda c: ObserveSettings.from_config(c), "bad observability setting metrics_port (FLAGLEDGER_METRICS_PORT)"),
        (
            lambda c: CheckpointSettings.from_config(c),
            "bad checkpoints setting every_events (FLAGLEDGER_CHECKPOINT_EVERY_EVENTS)",
        ),
        (
            lambda c: HttpSettings.from_config(c),
            "bad http setting trust_proxy (FLAGLEDGER_HTTP_TRUST_PROXY): must be on",
        ),
        (lambda c: KeySettings.load(c.keys), "bad keys setting backend (FLAGLEDGER_KEYS_BACKEND)"),
    ],
)
def test_a_bad_value_names_the_setting_and_not_the_value(
    tmp_path: Path, load: Callable[[NodeConfig], object], words: str
) -> None:
    bad = "s3cret-typo"
    config = NodeConfig(
        data_dir=tmp_path,
        capacity={"pool_size": bad},
        kafka={"partitions": bad},
        observability={"metrics_port": bad},
        checkpoints={"every_events": bad},
        http={"trust_proxy": bad},
        keys={"backend": bad},
    )
    with pytest.raises(ConfigurationError) as err:
        load(config)
    message = str(err.value)
    assert message.startswith(words), message
    assert bad not in message and "pydantic" not in message and "validation error" not in message


def test_a_bad_environment_value_is_refused_like_a_bad_file_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS", "ten seconds")
    with pytest.raises(ConfigurationError, match=r"session_timeout_ms \(FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS\)"):
        KafkaSettings.from_config(NodeConfig(data_dir=tmp_path))
    with pytest.raises(ConfigurationError, match="unknown kafka settings: brokers"):
        KafkaSettings.from_config(NodeConfig(data_dir=tmp_path, kafka={"brokers": "x"}))
