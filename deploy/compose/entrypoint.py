"""Start one agency node: initialise on first start, exchange public keys through a registry directory,
ensure the topics, then run ``flagledger node`` in this process's place.

Used by the Compose file (the image's entrypoint) and by deploy/local/network.py, with the same variables:

    FLAGLEDGER_*              the application's own configuration (database, secrets, Kafka, metrics, logs)
    AGENCY_CODE, AGENCY_NAME, AGENCY_KIND   the agency this node hosts (read here, at first start only)
    AGENCY_SIGNING_KEY_FILE   its Ed25519 private key (PEM, a mounted secret); adopted by `flagledger init`
    AGENCY_PEERS              comma-separated codes of the agencies whose first key this node trusts
    REGISTRY_DIR              where nodes publish their public key (public data only) and read their peers'
    PEER_WAIT_SECONDS         how long to wait for a peer's public key (default 300)

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


def run(*args: str) -> str:
    done = subprocess.run([flagledger(), *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"entrypoint: `flagledger {' '.join(args[:2])}` failed with exit code {done.returncode}")
    return done.stdout


def say(message: str) -> None:
    print(json.dumps({"logger": "flagledger.entrypoint", "message": message}), file=sys.stderr, flush=True)


def main() -> None:
    code, name, kind = os.environ["AGENCY_CODE"], os.environ["AGENCY_NAME"], os.environ["AGENCY_KIND"]
    data_dir = Path(os.environ["FLAGLEDGER_DATA_DIR"])
    registry = Path(os.environ["REGISTRY_DIR"])
    peers = [p for p in os.environ.get("AGENCY_PEERS", "").split(",") if p]
    wait = float(os.environ.get("PEER_WAIT_SECONDS", "300"))

    if not (data_dir / "config.json").exists():
        args = ["init", "--agency", code, "--name", name, "--kind", kind]
        if os.environ.get("AGENCY_SIGNING_KEY_FILE"):
            args += ["--signing-key-file", os.environ["AGENCY_SIGNING_KEY_FILE"]]
        run(*args)
        say(f"initialised agency {code} in {data_dir}")

    keys = [json.loads(line) for line in run("key", "list").splitlines() if line.strip()]
    own = next(k for k in keys if k["agency"] == code)  # the first key: what peers anchor their trust on
    registry.mkdir(parents=True, exist_ok=True)
    entry = registry / f"{code}.json"
    tmp = registry / f".{code}.json.tmp"
    tmp.write_text(json.dumps({"agency": code, "name": name, "kind": kind, **own}))
    tmp.replace(entry)  # readers never see half a file

    trusted = {k["agency"] for k in keys}
    for peer in peers:
        if peer in trusted:
            continue
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
        )
        say(f"{code} trusts {peer} key {p['key_id']}")

    run("topics", "ensure")
    say(f"starting node {code}")
    os.execv(flagledger(), [flagledger(), "node", *sys.argv[1:]])


if __name__ == "__main__":
    main()
