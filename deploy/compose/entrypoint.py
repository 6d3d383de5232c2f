"""Start one agency node: initialise on first start, exchange public keys through a registry directory,
ensure the topics, then run ``flagledger node`` in this process's place.

Used by the Compose file (the image's entrypoint) and by deploy/local/network.py, with the same variables:

    FLAGLEDGER_*              the application's own configuration (database, secrets, Kafka, metrics, logs)
    AGENCY_CODE, AGENCY_NAME, AGENCY_KIND   the agency this node hosts (read here, at first start only)
    AGENCY_SIGNING_KEY_FILE   its Ed25519 private key (PEM, a mounted secret); adopted by `flagledger init`
    AGENCY_PEERS              comma-separated codes of the agencies whose first key this node trusts
    AGENCY_ADMIN_PASSWORD_FILE  the first administrator's password (a mounted secret): at first start the
                              entrypoint activates the administrator with the enrolment code `init` printed, and
                              trusts the peers as that administrator (a command acts only as a person who proves
                              who they are, issue 18). Without it, an administrator activates and trusts by hand.
    REGISTRY_DIR              where nodes publish their public key (public data only) and read their peers'
    PEER_WAIT_SECONDS         how long to wait for a peer's public key (default 300)
    AGENCY_SECOND_ADMIN       optional: a second administrator's staff id, named at `init --second-admin` (granting
                              approver or operator takes two administrators); they activate with a code the first
                              issues (`network.py up --hub --story` sets it; Compose does not)
    NODE_ROLE, LINKAGE_MODE, LINKAGE_PARTIES   the linkage's hub and portal, an agency in hub mode
                              (linkage_entry.py, beside this file)

`entrypoint.py setup-only` does the first start's work and exits without starting the node (the hub's
one-shot init, shared by its active and standby replicas).

The registry directory stands in for the out-of-band key exchange between agencies' administrators: in a
real deployment each administrator checks the peer's key fingerprint before `flagledger agency trust`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def flagledger() -> str:
    found = shutil.which("flagledger") or str(Path(sys.executable).with_name("flagledger"))
    return found


def run(*args: str, password: str | None = None) -> str:
    env = dict(os.environ)
    if password is not None:  # to the child only, never on its command line
        env["FLAGLEDGER_PASSWORD"] = password
    done = subprocess.run([flagledger(), *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"entrypoint: `flagledger {' '.join(args[:2])}` failed with exit code {done.returncode}")
    return done.stdout


def say(message: str) -> None:
    print(json.dumps({"logger": "flagledger.entrypoint", "message": message}), file=sys.stderr, flush=True)


def main() -> None:
    setup_only = sys.argv[1:2] == ["setup-only"]
    node_args = [] if setup_only else sys.argv[1:]
    role = os.environ.get("NODE_ROLE", "agency")
    if role != "agency":
        from linkage_entry import set_up_role

        set_up_role(role, run, say)
        start(role, setup_only, node_args)
        return
    hub_mode = os.environ.get("LINKAGE_MODE", "shared") == "hub"
    code, name, kind = os.environ["AGENCY_CODE"], os.environ["AGENCY_NAME"], os.environ["AGENCY_KIND"]
    data_dir = Path(os.environ["FLAGLEDGER_DATA_DIR"])
    registry = Path(os.environ["REGISTRY_DIR"])
    peers = [p for p in os.environ.get("AGENCY_PEERS", "").split(",") if p]
    wait = float(os.environ.get("PEER_WAIT_SECONDS", "300"))
    password_file = os.environ.get("AGENCY_ADMIN_PASSWORD_FILE")
    password = Path(password_file).read_text().strip() if password_file else None

    if not (data_dir / "config.json").exists():
        args = ["init", "--agency", code, "--name", name, "--kind", kind]
        if os.environ.get("AGENCY_SIGNING_KEY_FILE"):
            args += ["--signing-key-file", os.environ["AGENCY_SIGNING_KEY_FILE"]]
        if os.environ.get("AGENCY_SECOND_ADMIN"):
            args += ["--second-admin", os.environ["AGENCY_SECOND_ADMIN"]]
        if hub_mode:  # started in hub mode: no national pseudonym secret is ever made (docs/linkage.md)
            from linkage_entry import wait_for

            args += ["--linkage-hub", str(wait_for("hub"))]
        enrolment_code = json.loads(run(*args))["enrolment_code"]
        say(f"initialised agency {code} in {data_dir}")
        if password is not None:
            run("staff", "activate", "--as", f"{code}/admin", "--code", enrolment_code, password=password)
            say(f"{code}/admin activated with the mounted password")
        else:
            # kept out of the logs (whoever activates it becomes the roster's root): a 0600 file in the data
            # directory, read once by the administrator in the pod, who then activates and trusts the peers
            held = data_dir / "first-admin-enrolment-code"
            fd = os.open(held, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(enrolment_code + "\n")
            say(f"{code}/admin's enrolment code is in {held}: `flagledger staff activate --code …`, then delete it")

    keys = [json.loads(line) for line in run("key", "list").splitlines() if line.strip()]
    own = next(k for k in keys if k["agency"] == code)  # the first key: what peers anchor their trust on
    registry.mkdir(parents=True, exist_ok=True)
    entry = registry / f"{code}.json"
    tmp = registry / f".{code}.json.tmp"
    tmp.write_text(json.dumps({"agency": code, "name": name, "kind": kind, **own}))
    tmp.replace(entry)  # readers never see half a file

    if hub_mode:  # the agency talks to the hub only: no peers to trust, no shared topics
        from linkage_entry import set_up_agency_in_hub_mode

        set_up_agency_in_hub_mode(code, say)
        start(code, setup_only, node_args)
        return

    trusted = {k["agency"] for k in keys}
    for peer in peers:
        if peer in trusted:
            continue
        if password is None:
            raise SystemExit(
                f"entrypoint: {peer} is not trusted yet and no AGENCY_ADMIN_PASSWORD_FILE is mounted: an "
                f"administrator runs `flagledger login` and `flagledger agency trust --agency {peer} …` (the key "
                "fingerprint checked out of band), then restarts this node"
            )
        path = registry / f"{peer}.json"
        deadline = time.monotonic() + wait
        while not path.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"entrypoint: no public key from {peer} in {registry} after {wait:.0f} s")
            time.sleep(0.2)
        p = json.loads(path.read_text())
        run(
            "agency",
            "trust",
            "--as",
            f"{code}/admin",
            "--agency",
            peer,
            "--name",
            p["name"],
            "--kind",
            p["kind"],
            "--key-id",
            p["key_id"],
            "--public-key",
            p["public_hex"],
            "--valid-from",
            str(p["valid_from"]),
            password=password,
        )
        say(f"{code} trusts {peer} key {p['key_id']}")

    run("topics", "ensure")
    start(code, setup_only, node_args)


def start(who: str, setup_only: bool, node_args: list[str]) -> None:
    if setup_only:
        say(f"{who} is set up; not starting the node (setup-only)")
        return
    say(f"starting node {who}")
    os.execv(flagledger(), [flagledger(), "node", *node_args])


if __name__ == "__main__":
    main()
