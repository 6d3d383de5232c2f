"""The deployment files configure what the application reads: every key the Compose and Kubernetes files set
is one the application (or the node entrypoint, or libpq) reads; every key a node needs is set; the values
pass the application's own settings checks; secrets are files, never values.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.settings import KafkaSettings
from ledger.errors import ConfigurationError
from ledger.node.observe import ObserveSettings
from ledger.runtime.config import NodeConfig

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
ENTRYPOINT = REPO / "deploy" / "compose" / "entrypoint.py"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LIBPQ = {"PGSSLMODE", "PGSSLROOTCERT"}  # read by libpq under psycopg, documented in deploy/README.md

# what a node cannot run without (the entrypoint's first start and the running node)
REQUIRED = {
    "FLAGLEDGER_DATA_DIR",
    "FLAGLEDGER_DATABASE_URL",
    "FLAGLEDGER_DATABASE_PASSWORD_FILE",
    "FLAGLEDGER_CIPHER_KEY_FILE",
    "FLAGLEDGER_PSEUDONYM_KEY_FILE",
    "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS",
    "FLAGLEDGER_KAFKA_GROUP_ID",
    "FLAGLEDGER_KAFKA_REPLICATION_FACTOR",
    "FLAGLEDGER_METRICS_PORT",
    "FLAGLEDGER_METRICS_HOST",
    "AGENCY_CODE",
    "AGENCY_NAME",
    "AGENCY_KIND",
    "AGENCY_SIGNING_KEY_FILE",
    "REGISTRY_DIR",
}
SECRET_FILES = {
    "FLAGLEDGER_DATABASE_PASSWORD_FILE",
    "FLAGLEDGER_CIPHER_KEY_FILE",
    "FLAGLEDGER_PSEUDONYM_KEY_FILE",
    "AGENCY_SIGNING_KEY_FILE",
    "AGENCY_ADMIN_PASSWORD_FILE",
    "FLAGLEDGER_KAFKA_SASL_PASSWORD_FILE",
}


@functools.cache
def app_keys() -> set[str]:
    """Every variable the application reads: literal names in its source, and the settings classes' fields."""
    names: set[str] = set()
    for package in ("ledger", "consumers", "projections"):
        for path in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r"[\"'](FLAGLEDGER_[A-Z_]+)[\"']", path.read_text()))
    names |= KafkaSettings.env_names() | ObserveSettings.env_names()
    return {name for name in names if not name.endswith("_")}  # a prefix (section_config) is no variable


@functools.cache
def entrypoint_keys() -> set[str]:
    text = ENTRYPOINT.read_text() + ENTRYPOINT.with_name("linkage_entry.py").read_text()  # its linkage half
    return set(re.findall(r"os\.environ(?:\.get\()?\[?[\"']([A-Z_]+)[\"']", text))


@functools.cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(COMPOSE.read_text(), Loader=LOADER)
    return data


def compose_nodes() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if name.startswith("node-")}


@functools.cache
def k8s_docs() -> list[dict[str, Any]]:
    return [d for path in K8S for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]


def k8s_nodes() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == "StatefulSet"}


def k8s_env(sts: dict[str, Any]) -> dict[str, str]:
    [container] = sts["spec"]["template"]["spec"]["containers"]
    return {e["name"]: str(e["value"]) for e in container["env"]}


def all_envs() -> dict[str, dict[str, str]]:
    out = {f"compose:{n}": {k: str(v) for k, v in s["environment"].items()} for n, s in compose_nodes().items()}
    out |= {f"k8s:{n}": k8s_env(s) for n, s in k8s_nodes().items()}
    return out


def test_the_files_parse_and_hold_three_agency_nodes() -> None:
    assert set(compose_nodes()) == {"node-a", "node-b", "node-sc"}
    assert len(k8s_nodes()) == 3
    assert entrypoint_keys() >= {"AGENCY_CODE", "AGENCY_PEERS", "REGISTRY_DIR", "AGENCY_SIGNING_KEY_FILE"}


@pytest.mark.parametrize("where", sorted(all_envs()))
def test_every_key_set_is_read_and_every_required_key_is_set(where: str) -> None:
    env = all_envs()[where]
    read = app_keys()
    unread = {k for k in env if k.startswith("FLAGLEDGER_") and k not in read}
    assert not unread, f"{where} sets keys the application never reads: {sorted(unread)}"
    others = {k for k in env if not k.startswith("FLAGLEDGER_")} - entrypoint_keys() - LIBPQ
    assert not others, f"{where} sets keys nothing reads: {sorted(others)}"
    missing = REQUIRED - set(env)
    assert not missing, f"{where} lacks required keys: {sorted(missing)}"
    for key, value in env.items():
        assert not re.search(r"(PASSWORD|KEY|SECRET)$", key), f"{where}: {key} would pass a secret as a value"
        if key in SECRET_FILES:
            assert value.startswith("/run/secrets/"), f"{where}: {key} must name a mounted secret file"


@pytest.mark.parametrize("where", sorted(all_envs()))
def test_the_values_pass_the_applications_own_settings_checks(
    where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = all_envs()[where]
    for key in [k for k in list(__import__("os").environ) if k.startswith("FLAGLEDGER_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = NodeConfig(data_dir=tmp_path)  # no password file here: checked below without reading it
    kafka = KafkaSettings.from_config(config)
    assert kafka.group_id == f"flagledger-{env['AGENCY_CODE']}", "each agency consumes in its own group"
    assert kafka.replication_factor == 3 and kafka.partitions >= 12
    observe = ObserveSettings.from_config(config)
    assert observe.metrics_port == 9464 and observe.metrics_host == "0.0.0.0" and observe.log_format == "json"
    if where.startswith("k8s:"):
        assert kafka.security_protocol == "SASL_SSL" and kafka.sasl_mechanism == "SCRAM-SHA-512"
        assert kafka.ssl_cafile and kafka.sasl_password_file


def test_compose_mounts_every_secret_file_a_node_names() -> None:
    declared = compose()["secrets"]
    for name, service in compose_nodes().items():
        targets = {"/run/secrets/" + s["target"] for s in service["secrets"]}
        assert all(s["source"] in declared for s in service["secrets"])
        for key in SECRET_FILES & set(service["environment"]):
            assert service["environment"][key] in targets, f"{name}: {key} is not a mounted secret"
    for spec in declared.values():
        assert spec["file"].startswith("./secrets/"), "secrets come from git-ignored files"
    assert "deploy/compose/secrets/" in (REPO / ".gitignore").read_text()


def test_compose_kafka_is_three_kraft_brokers_with_rf3_and_min_isr2() -> None:
    brokers = {n: s for n, s in compose()["services"].items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    for s in brokers.values():
        env = s["environment"]
        assert s["image"].startswith("apache/kafka:")
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    databases = {s["environment"]["FLAGLEDGER_DATABASE_URL"].rsplit("/", 1)[1] for s in compose_nodes().values()}
    assert len(databases) == 3, "one database per agency"


def test_k8s_nodes_have_probes_resources_and_a_disruption_budget() -> None:
    docs = k8s_docs()
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for name, sts in k8s_nodes().items():
        assert sts["spec"]["replicas"] == 1
        [c] = sts["spec"]["template"]["spec"]["containers"]
        port = int(k8s_env(sts)["FLAGLEDGER_METRICS_PORT"])
        assert [p["containerPort"] for p in c["ports"] if p["name"] == "metrics"] == [port]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        labels = sts["spec"]["template"]["metadata"]["labels"]
        assert any(p["spec"]["selector"]["matchLabels"].items() <= labels.items() for p in pdbs), name
    [kafka] = [d for d in docs if d["kind"] == "Kafka"]
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert all(
        listener["tls"] and listener["authentication"]["type"] == "scram-sha-512"
        for listener in kafka["spec"]["kafka"]["listeners"]
    )
    users = {d["metadata"]["name"] for d in docs if d["kind"] == "KafkaUser"}
    assert users == {k8s_env(s)["FLAGLEDGER_KAFKA_SASL_USERNAME"] for s in k8s_nodes().values()}


def test_the_local_network_uses_the_compose_keys() -> None:
    spec = importlib.util.spec_from_file_location("flagledger_local_network_keys", REPO / "deploy/local/network.py")
    assert spec is not None and spec.loader is not None
    net = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = net
    spec.loader.exec_module(net)
    for agency in net.AGENCIES:
        local = net.node_environment(
            agency,
            data_dir="d",
            database_url="postgresql://x@h/db",
            secrets_dir="/s",
            shared_secrets_dir="/s",
            registry_dir="/r",
            bootstrap="h:1",
            metrics_port=1,
        )
        service = compose_nodes()[agency.service]
        assert set(local) == set(service["environment"]), agency.service
        for key in ("AGENCY_CODE", "AGENCY_KIND", "AGENCY_PEERS", "FLAGLEDGER_KAFKA_GROUP_ID"):
            assert local[key] == str(service["environment"][key]), (agency.service, key)


def test_sasl_settings_reach_kafka_python_and_bad_ones_are_refused(tmp_path: Path, monkeypatch) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    base = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "agency-131016",
        "sasl_password_file": str(password),
        "ssl_cafile": "/ca.crt",
    }
    options = KafkaSettings(**base).client_options()
    assert options["sasl_plain_password"] == "s3cret" and options["sasl_plain_username"] == "agency-131016"
    assert options["security_protocol"] == "SASL_SSL" and options["ssl_cafile"] == "/ca.crt"
    config = NodeConfig(data_dir=tmp_path, kafka={**base, "sasl_mechanism": "GSSAPI"})
    with pytest.raises(ConfigurationError, match="sasl_mechanism"):
        KafkaSettings.from_config(config)
    with pytest.raises(ConfigurationError, match="security_protocol"):
        KafkaSettings.from_config(NodeConfig(data_dir=tmp_path, kafka={"security_protocol": "TLS"}))
    with pytest.raises(ConfigurationError, match="SASL password"):
        KafkaSettings(**{**base, "sasl_password_file": str(tmp_path / "missing")}).client_options()
    assert "sasl_plain_password" not in KafkaSettings().client_options()


def test_the_database_password_file_is_used_but_never_saved(tmp_path: Path, monkeypatch) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("p@ss/word\n")
    monkeypatch.setenv("FLAGLEDGER_DATABASE_PASSWORD_FILE", str(secret))
    config = NodeConfig(data_dir=tmp_path, database_url="postgresql://agency_a@db:5432/agency_a", encryption=False)
    config.apply_environment()
    assert config.ledger_env()["POSTGRES_PASSWORD"] == "p@ss/word"
    assert config.views_url() == "postgresql+psycopg://agency_a:p%40ss%2Fword@db:5432/agency_a"
    config.save()
    assert "p@ss" not in config.path.read_text()
    monkeypatch.setenv("FLAGLEDGER_DATABASE_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="database password file"):
        config.apply_environment()
