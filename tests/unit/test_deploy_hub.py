"""The linkage's deployment (issue #19): the hub as active/standby replicas on one database, the portal, agency
nodes in hub mode, and the broker's ACLs — one Strimzi ``KafkaUser`` per party — that are exactly the star of
``check_route``. Every Strimzi resource is validated against the CRDs of Strimzi 1.2.0 copied in
deploy/strimzi-1.2.0, strictly: a field the schema does not know is an error (the API server would drop it, and
a dropped ACL or setting is a silent hole).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from ledger.errors import PermissionDenied
from ledger.linkage.names import HUB
from ledger.linkage.transport import Topics, check_route
from tests.e2e.test_local_network import load_network

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
HUB_DIR = K8S / "hub"
COMPOSE = REPO / "deploy" / "compose"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
AGENCIES = ("131016", "131024", "SC-TOKYO")
PARTIES = (HUB, "portal", *AGENCIES)
ENTRY_KEYS = ("NODE_ROLE", "LINKAGE_MODE", "LINKAGE_PARTIES", "REGISTRY_DIR", "PEER_WAIT_SECONDS")


def _strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused (as `kubectl apply --validate=strict` does)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    open_ended = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_ended:
        out["additionalProperties"] = False
    return out


@functools.cache
def validators() -> dict[tuple[str, str], jsonschema_rs.Draft4Validator]:
    out = {}
    for path in sorted((REPO / "deploy" / "strimzi-1.2.0").glob("*-Crd-*.yaml")):
        crd = yaml.load(path.read_text(), Loader=LOADER)
        for version in crd["spec"]["versions"]:
            if not version["served"]:
                continue
            schema = _strict(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}  # the API server's, not the CRD's
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = jsonschema_rs.Draft4Validator(schema)
    return out


@functools.cache
def docs(where: Path) -> list[dict[str, Any]]:
    return [d for path in sorted(where.glob("*.yaml")) for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]


def strimzi_docs() -> list[dict[str, Any]]:
    return [d for d in docs(K8S) + docs(HUB_DIR) if d["apiVersion"].startswith("kafka.strimzi.io/")]


def errors(doc: dict[str, Any]) -> list[str]:
    validator = validators().get((doc["apiVersion"], doc["kind"]))
    if validator is None:
        return [f"Strimzi 1.2.0 serves no {doc['apiVersion']} {doc['kind']}"]
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_every_strimzi_resource_is_valid_for_strimzi_1_2_and_a_typo_is_caught() -> None:
    """Administrator or broker operator applying a manifest the operator silently ignores in part (an unknown
    field dropped, an old API version no longer served): every Kafka, KafkaNodePool, KafkaTopic and KafkaUser
    validates against the served v1 schema; a misspelled ACL field and the retired v1beta2 are refused."""
    found = strimzi_docs()
    assert {d["kind"] for d in found} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    for doc in found:
        assert not errors(doc), (doc["kind"], doc["metadata"]["name"], errors(doc))
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]["name"]
    user = copy.deepcopy(next(d for d in found if d["kind"] == "KafkaUser"))
    user["spec"]["authorization"]["acls"][0]["operation"] = ["Read"]  # the singular of `operations`
    assert any("operation" in e for e in errors(user))
    user = copy.deepcopy(next(d for d in found if d["kind"] == "KafkaUser"))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    assert errors(user)
    assert errors({**user, "apiVersion": "kafka.strimzi.io/v1beta2"})


def acl_table() -> dict[str, dict[tuple[str, str], set[str]]]:
    """KafkaUser name -> (resource type, resource name) -> operations, from deploy/k8s/hub."""
    table: dict[str, dict[tuple[str, str], set[str]]] = {}
    for user in (d for d in docs(HUB_DIR) if d["kind"] == "KafkaUser"):
        rules = table.setdefault(user["metadata"]["name"], {})
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl.get("type", "allow") == "allow" and acl.get("host", "*") == "*"
            resource = acl["resource"]
            assert resource.get("patternType", "literal") == "literal", "a prefix ACL could reach another's inbox"
            rules.setdefault((resource["type"], resource.get("name", "")), set()).update(acl["operations"])
    return table


def user_of(party: str) -> str:
    return f"linkage-{party.lower()}"


def test_the_acl_table_is_exactly_the_star_of_check_route() -> None:
    """Peer agency or its compromised node at the broker: it reads only its own inbox topic and its own consumer
    group and writes only the hub's topic — never another agency's inbox, whatever its node does; the hub reads
    its topic and writes every inbox; the portal as an agency. Writes are exactly the routes check_route allows,
    reads exactly each party's own inbox; no party may create, delete or alter anything."""
    topics = Topics()
    table = acl_table()
    assert set(table) == {user_of(p) for p in PARTIES}
    party_of_topic = {topics.inbox(p): p for p in PARTIES}
    for sender in PARTIES:
        rules = table[user_of(sender)]
        writes = {party_of_topic[name] for (kind, name), ops in rules.items() if kind == "topic" and "Write" in ops}
        reads = {party_of_topic[name] for (kind, name), ops in rules.items() if kind == "topic" and "Read" in ops}
        groups = {name for (kind, name), ops in rules.items() if kind == "group"}
        routes = set()
        for recipient in PARTIES:
            try:
                check_route(sender, recipient)
                routes.add(recipient)
            except PermissionDenied:
                pass
        assert writes == routes, (sender, writes, routes)
        assert reads == {sender}, (sender, reads)
        assert groups == {f"{topics.prefix}.{sender}"} and rules[("group", groups.pop())] == {"Read"}
        ops = set().union(*rules.values())
        assert ops <= {"Describe", "Read", "Write", "IdempotentWrite"}, (sender, ops)
        assert rules[("cluster", "")] == {"IdempotentWrite"}
    assert {party_of_topic[t["spec"]["topicName"]] for t in docs(HUB_DIR) if t["kind"] == "KafkaTopic"} == set(
        PARTIES
    ), "every inbox is a KafkaTopic the operator owns"


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in container.get("env", [])}


def workloads() -> dict[str, dict[str, Any]]:
    kinds = {"Deployment", "StatefulSet", "Job"}
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs(HUB_DIR) if d["kind"] in kinds}


def test_the_hub_is_two_replicas_on_one_database_and_one_directory() -> None:
    """Administrator or a machine failing: the hub runs active and standby — two replicas kept on different
    machines, one PostgreSQL database and one data directory (the same keys) for both, made once by a Job — so the
    lease decides who sequences and the standby takes over; a drain never takes both."""
    loads = workloads()
    hub, init = loads["Deployment/hub"], loads["Job/hub-init"]
    assert hub["spec"]["replicas"] == 2
    spec = hub["spec"]["template"]["spec"]
    [rule] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule["topologyKey"] == "kubernetes.io/hostname"
    assert rule["labelSelector"]["matchLabels"] == hub["spec"]["selector"]["matchLabels"]
    [container] = spec["containers"]
    [init_container] = init["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["flagledger", "node"] and init_container["args"] == ["setup-only"]
    assert env(container)["FLAGLEDGER_DATABASE_URL"] == env(init_container)["FLAGLEDGER_DATABASE_URL"]
    claims = [
        {v["persistentVolumeClaim"]["claimName"] for v in s["volumes"] if v["name"] == "data"}
        for s in (spec, init["spec"]["template"]["spec"])
    ]
    assert claims == [{"hub-data"}, {"hub-data"}]
    [pvc] = [d for d in docs(HUB_DIR) if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == "hub-data"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert set(env(init_container)["LINKAGE_PARTIES"].split(",")) == {"portal", *AGENCIES}
    [pdb] = [d for d in docs(HUB_DIR) if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "hub"]
    assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"] == hub["spec"]["selector"]


def test_each_linkage_workload_authenticates_as_its_own_party_and_mounts_its_secrets_as_files() -> None:
    """Peer agency borrowing another's principal, or a secret passed as a value: each workload logs in to the
    broker as its own KafkaUser over SASL_SSL with the password from a mounted Secret; agencies are in hub mode
    and read no pseudonym key; every key set is one the application or the entrypoint reads. Operator: every
    party is probed (a stalled one is restarted or taken out of service), the hub pair by liveness only."""
    from tests.unit.test_deploy_config import app_keys, entrypoint_keys

    read = app_keys() | entrypoint_keys() | {"PGSSLMODE", "PGSSLROOTCERT"}
    users = set()
    for name, load in workloads().items():
        [container] = load["spec"]["template"]["spec"]["containers"]
        e = env(container)
        assert not set(e) - read, (name, set(e) - read)
        assert e["FLAGLEDGER_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert e["FLAGLEDGER_KAFKA_SASL_PASSWORD_FILE"].startswith("/run/secrets/")
        assert e["FLAGLEDGER_LINKAGE_TOPIC_PREFIX"] == Topics().prefix
        party = e.get("AGENCY_CODE") or e["NODE_ROLE"]
        assert e["FLAGLEDGER_KAFKA_SASL_USERNAME"] == user_of(party), name
        users.add(e["FLAGLEDGER_KAFKA_SASL_USERNAME"])
        if "AGENCY_CODE" in e:
            assert e["LINKAGE_MODE"] == "hub" and "FLAGLEDGER_PSEUDONYM_KEY_FILE" not in e
        if load["kind"] != "Job":  # the one-shot set-up has nothing to probe
            # every party serves its probes (ledger/node/role_metrics.py) on the port the manifest opens
            probes = {k: c["httpGet"]["path"] for k in ("readinessProbe", "livenessProbe") if (c := container.get(k))}
            assert (e["FLAGLEDGER_METRICS_HOST"], e["FLAGLEDGER_METRICS_PORT"]) == ("0.0.0.0", "9464"), name
            assert {"name": "metrics", "containerPort": 9464} in container["ports"], name
            assert probes["livenessProbe"] == "/healthz", name
            # the hub's /readyz is true at the leader alone: as a readiness probe it would stall every rollout
            assert probes.get("readinessProbe") == (None if party == "hub" else "/readyz"), name
        secret_of = {
            v["name"]: v.get("secret", {}).get("secretName") for v in load["spec"]["template"]["spec"]["volumes"]
        }
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert secret_of[mounts["/run/secrets/kafka-user"]] == user_of(party), name
    assert users == {user_of(p) for p in PARTIES}


def compose_services() -> dict[str, dict[str, Any]]:
    data: dict[str, Any] = yaml.load((COMPOSE / "compose.yaml").read_text(), Loader=LOADER)
    return dict(data["services"])


def test_compose_runs_a_hub_pair_and_a_portal_beside_the_agencies() -> None:
    """Administrator starting the roles by hand: Compose has a one-shot hub-init (setup-only), then hub-a and
    hub-b on the same database and volume (active/standby by the lease), and a portal on its own database; each
    role's database password is a mounted secret, and the entrypoint reads the role variables."""
    services = compose_services()
    assert {"hub-init", "hub-a", "hub-b", "portal", "node-a", "node-b", "node-sc"} <= set(services)
    init, a, b, portal = (services[n] for n in ("hub-init", "hub-a", "hub-b", "portal"))
    assert init["command"] == ["setup-only"] and init["restart"] == "no"
    for hub in (a, b):
        assert hub["entrypoint"] == ["flagledger", "node"]
        assert hub["depends_on"] == {"hub-init": {"condition": "service_completed_successfully"}}
        assert hub["environment"]["FLAGLEDGER_DATABASE_URL"] == init["environment"]["FLAGLEDGER_DATABASE_URL"]
        assert hub["volumes"] == ["hub:/var/lib/flagledger"]
    assert init["environment"]["NODE_ROLE"] == "hub" and portal["environment"]["NODE_ROLE"] == "portal"
    # operator: each running role is health-checked on its metrics port; the hub pair by liveness (one leads)
    checked = {n: " ".join(services[n]["healthcheck"]["test"]) for n in ("hub-a", "hub-b", "portal")}
    assert "/healthz" in checked["hub-a"] and "/healthz" in checked["hub-b"] and "/readyz" in checked["portal"]
    assert all(services[n]["environment"]["FLAGLEDGER_METRICS_PORT"] == "9464" for n in checked)
    assert "hub:/var/lib/flagledger" in init["volumes"]
    databases = {
        s["environment"]["FLAGLEDGER_DATABASE_URL"].rsplit("/", 1)[1]
        for s in services.values()
        if "environment" in s and "FLAGLEDGER_DATABASE_URL" in s["environment"]
    }
    assert {"hub", "portal"} <= databases and len(databases) == 5, "one database per agency and per role"
    for service in (init, a, portal):
        assert service["environment"]["FLAGLEDGER_DATABASE_PASSWORD_FILE"] == "/run/secrets/db_password"
        assert [s["target"] for s in service["secrets"]] == ["db_password"]
        assert "registry:/var/lib/flagledger-registry" in service["volumes"] or service is a
    from tests.unit.test_deploy_config import entrypoint_keys

    assert set(ENTRY_KEYS) <= entrypoint_keys()
    net = load_network()
    local = net.role_environment(
        "hub", data_dir="d", database_url="u", secrets_dir="/s", registry_dir="/r", bootstrap="h"
    )
    assert set(local) == set(init["environment"]) - {"LINKAGE_PARTIES"}, "deploy/local starts the roles as Compose"
    init_sql = (COMPOSE / "postgres-init.sh").read_text()
    assert "hub:hub" in init_sql and "portal:portal" in init_sql
