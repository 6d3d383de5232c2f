"""Observability settings, JSON logs, the health endpoints' answers and adopting a mounted signing key."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ledger.errors import ConfigurationError
from ledger.log.signing import Signer
from ledger.node.observe import HealthServer, JsonFormatter, NodeMetrics, ObserveSettings
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from ledger.runtime.config import NodeConfig


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_settings_come_from_config_then_environment_then_options(tmp_path: Path, monkeypatch) -> None:
    config = NodeConfig(data_dir=tmp_path, observability={"metrics_port": 9000, "log_format": "json"})
    assert ObserveSettings.from_config(config).metrics_port == 9000
    monkeypatch.setenv("FLAGLEDGER_METRICS_PORT", "9100")
    assert ObserveSettings.from_config(config).metrics_port == 9100
    assert ObserveSettings.from_config(config, metrics_port=9200).metrics_port == 9200
    with pytest.raises(ConfigurationError, match="log_format"):
        ObserveSettings.from_config(config, log_format="xml")
    with pytest.raises(ConfigurationError, match="unknown observability"):
        ObserveSettings.from_config(NodeConfig(data_dir=tmp_path, observability={"port": 1}))
    monkeypatch.setenv("FLAGLEDGER_METRICS_PORT", "ninety")
    with pytest.raises(ConfigurationError, match="bad observability"):
        ObserveSettings.from_config(config)


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("flagledger.node", logging.WARNING, __file__, 1, "parked %s", ("x/0@1",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["logger"] == "flagledger.node" and entry["message"] == "parked x/0@1"
    assert entry["ts"].endswith("+00:00")


def test_health_endpoints_follow_the_loop() -> None:
    metrics = NodeMetrics()
    server = HealthServer(metrics, ObserveSettings(metrics_port=0, liveness_seconds=60))
    try:
        assert get(server.port, "/healthz")[0] == 200, "alive while starting"
        assert get(server.port, "/readyz")[0] == 503, "not ready before the first round"
        metrics.last_round, metrics.ready = __import__("time").monotonic(), True
        assert get(server.port, "/readyz")[0] == 200
        status, body = get(server.port, "/metrics")
        assert status == 200 and "flagledger_consumer_lag_messages" in body
        assert "flagledger_checkpoint_age_seconds" not in body, "unset until checkpoints are enabled"
        assert get(server.port, "/nothing")[0] == 404
        metrics.last_round -= 61  # the loop has been stuck longer than liveness_seconds
        assert get(server.port, "/healthz")[0] == 503 and get(server.port, "/readyz")[0] == 503
    finally:
        server.close()


@pytest.mark.usefixtures("file_keys")  # the file backend's adoption (a token imports the key: test_pkcs11_keystore)
def test_init_adopts_a_mounted_signing_key_without_copying_it(tmp_path: Path) -> None:
    key = tmp_path / "mounted" / "signing_key"
    signer = Signer.generate("131016")
    signer.save(key)
    node = init_node(
        tmp_path / "data", [AgencySpec("131016", "A市", "municipality")], signing_key_file=key, encryption=False
    )
    try:
        assert node.app.signers["131016"].key_id == signer.key_id
        entry = node.config.agency("131016").current_key
        assert entry["file"] == str(key.absolute())
        assert not list((tmp_path / "data" / "secrets").glob("*.pem")), "the key stays where it is mounted"
    finally:
        node.close()
    with pytest.raises(ConfigurationError, match="exactly one agency"):
        init_node(
            tmp_path / "two",
            [AgencySpec("131016", "A市", "municipality"), AgencySpec("131024", "B市", "municipality")],
            signing_key_file=key,
        )


def test_rotation_adopts_a_new_mounted_key(tmp_path: Path) -> None:
    from ledger.app import Actor
    from ledger.audit.verify import verify_log
    from ledger.runtime.bootstrap import rotate_key

    node = init_node(tmp_path / "data", [AgencySpec("131016", "A市", "municipality")], encryption=False)
    try:
        new = Signer.generate("131016")
        new.save(tmp_path / "mounted" / "signing_key_2")
        assert rotate_key(node, Actor("131016", "admin"), tmp_path / "mounted" / "signing_key_2") == new.key_id
        node.app.enroll_staff(Actor("131016", "admin"), "req", "req", ["requester"])
        [(_, _, last)] = node.app.envelopes(start=node.app.max_position())
        assert last.header.key_id == new.key_id, "events after the rotation are signed with the adopted key"
        assert verify_log(node.app).first_bad is None
    finally:
        node.close()


def test_a_taken_metrics_port_is_a_configuration_error() -> None:
    first = HealthServer(NodeMetrics(), ObserveSettings(metrics_port=0))
    try:
        with pytest.raises(ConfigurationError, match="cannot serve metrics"):
            HealthServer(NodeMetrics(), ObserveSettings(metrics_port=first.port))
    finally:
        first.close()


def test_checkpoint_age_is_unset_until_the_node_signs_and_then_follows_its_latest_checkpoint(
    sqlite_node: Node,
) -> None:
    from ledger.app.checkpoints import latest_checkpoint
    from ledger.node.observe import latest_checkpoint_time

    assert latest_checkpoint_time(sqlite_node) is None, "no checkpoint yet: the gauge stays unset"
    sqlite_node.app.sign_checkpoint()
    first = latest_checkpoint_time(sqlite_node)
    assert first is not None and first == latest_checkpoint(sqlite_node.app).timestamp
    sqlite_node.app.sign_checkpoint()  # the checkpoint event itself is new to the log: a larger tree
    second = latest_checkpoint_time(sqlite_node)
    assert second is not None and second >= first
    assert latest_checkpoint(sqlite_node.app).tree_size > 1
