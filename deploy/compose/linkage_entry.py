"""The linkage's parts of the node entrypoint (entrypoint.py): a hub's or a portal's first start, and an agency
node switched to hub mode. Public directory entries are exchanged as files in ``REGISTRY_DIR/linkage/`` — one
``PARTY.json`` each, public keys only — standing in for the administrators' out-of-band exchange.

    NODE_ROLE          agency (default), hub or portal
    LINKAGE_MODE       an agency: shared (default) or hub (``linkage.mode: hub`` written into config.json)
    LINKAGE_PARTIES    the hub: the parties whose entries it waits for and imports (the portal, the agencies);
                       the portal: the agencies in hub mode (it checks their signatures on records' contents)
    FLAGLEDGER_LINKAGE_TOPIC_PREFIX   read by the application; written into an agency's config.json too

The hub's entry is published first, so the others (which wait for it) and the hub (which waits for theirs)
never wait on each other. Importing an entry again replaces the party's old one; the hub's running loop reads
its directory again when it changes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., str]


def registry() -> Path:
    where = Path(os.environ["REGISTRY_DIR"]) / "linkage"
    where.mkdir(parents=True, exist_ok=True)
    return where


def publish(party: str, entry: dict[str, object]) -> Path:
    path = registry() / f"{party}.json"
    tmp = path.with_name(f".{party}.json.tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)  # readers never see half a file
    return path


def wait_for(party: str) -> Path:
    wait = float(os.environ.get("PEER_WAIT_SECONDS", "300"))
    path = registry() / f"{party}.json"
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"entrypoint: no linkage entry from {party} in {path.parent} after {wait:.0f} s")
        time.sleep(0.2)
    return path


def set_up_role(role: str, run: Run, say: Callable[[str], None]) -> None:
    """``init --role`` once, publish the role's entry, import the entries it needs (the hub's, or everyone's)."""
    data_dir = Path(os.environ["FLAGLEDGER_DATA_DIR"])
    if not (data_dir / "config.json").exists():
        args = ["init", "--role", role]
        if os.environ.get("FLAGLEDGER_LINKAGE_TOPIC_PREFIX"):
            args += ["--topic-prefix", os.environ["FLAGLEDGER_LINKAGE_TOPIC_PREFIX"]]
        run(*args)
        say(f"initialised the {role} in {data_dir}")
    publish(role, json.loads(run("linkage", "directory", "export")))
    parties = [p for p in os.environ.get("LINKAGE_PARTIES", "").split(",") if p]
    wanted = ["hub", *parties] if role == "portal" else parties
    for party in wanted:
        run("linkage", "directory", "import", str(wait_for(party)))
        say(f"the {role} imported {party}'s linkage entry")


def set_up_agency_in_hub_mode(code: str, say: Callable[[str], None]) -> None:
    """Write ``linkage.mode: hub`` and the hub's published entry into config.json, then publish this agency's
    entry for the hub (its keys exist only once the node has opened in hub mode) and find its inbox topic."""
    from consumers.kafka_transport import ensure_inboxes
    from consumers.settings import KafkaSettings
    from ledger.linkage.transport import Topics
    from ledger.runtime.bootstrap import open_node
    from ledger.runtime.config import NodeConfig
    from ledger.runtime.linkage import published_entry

    data_dir = Path(os.environ["FLAGLEDGER_DATA_DIR"])
    hub = json.loads(wait_for("hub").read_text())
    portal = json.loads(wait_for("portal").read_text())  # its records' contents are sealed to the portal
    config = NodeConfig.load(data_dir)
    prefix = os.environ.get("FLAGLEDGER_LINKAGE_TOPIC_PREFIX") or str(config.linkage.get("topic_prefix", Topics.prefix))
    linkage = {"mode": "hub", "topic_prefix": prefix, "hub": hub, "portal": portal}
    if any(config.linkage.get(k) != v for k, v in linkage.items()):
        config.linkage = {**config.linkage, **linkage}
        config.save()
        say(f"{code} is in linkage hub mode, with the hub's key {hub.get('key_id')}")
    node = open_node(data_dir)
    try:
        publish(code, published_entry(node))
        settings = KafkaSettings.from_config(node.config)
    finally:
        node.close()
    # with Strimzi the KafkaTopic exists already and this only finds it (the agency may not create topics)
    ensure_inboxes(settings, Topics(prefix), [code], partitions=3)
