"""``flagledger node`` for a witness data directory (issue #20): the witness's loop on Kafka until stopped.

Each step reads the witness's inbox (the hub's map heads, the agencies' tree heads the hub forwards and the ones
they relay, peers' gossip and cosignatures), keeps what it holds and owes, and sends through the hub; every
``gossip_every_seconds`` (config.json ``linkage``, default 30) it gossips its view to its peers
(``linkage.peers``: the other witnesses' codes). The hub's signing key is the hub's entry in the directory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from ledger.errors import BrokerUnavailable, ConfigurationError, FlagLedgerError, StorageError
from ledger.linkage.names import HUB
from ledger.linkage.transport import Transport
from ledger.log.signing import public_key_from_hex
from ledger.node.role_metrics import RoleMetrics
from ledger.runtime.roles import RoleNode
from ledger.witness.service import WitnessService

__all__ = ["witness_loop"]

log = logging.getLogger("flagledger.witness")


def _settings(node: RoleNode) -> tuple[list[str], float]:
    peers, every = node.config.linkage.get("peers", []), node.config.linkage.get("gossip_every_seconds", 30)
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        raise ConfigurationError("config.json linkage.peers is a list of the other witnesses' codes")
    if not isinstance(every, int | float) or not 1 <= every <= 86_400:
        raise ConfigurationError("config.json linkage.gossip_every_seconds is 1-86400")
    return peers, float(every)


def _service(node: RoleNode, transport: Transport, peers: list[str]) -> WitnessService:
    hub = next((e for e in node.entries() if e.party == HUB), None)
    if hub is None:
        raise ConfigurationError("the witness knows no hub: import the hub's directory entry first")
    directory = node.directory()
    return WitnessService(node.witness_store(), transport, node.keys, directory, public_key_from_hex(hub.public_hex),
                          peers=peers)  # fmt: skip


def witness_loop(
    node: RoleNode,
    transport: Transport,
    stop: threading.Event,
    counts: Counter[str],
    metrics: RoleMetrics | None = None,
) -> dict[str, Any]:
    peers, every = _settings(node)
    witness = _service(node, transport, peers)
    stamp, gossiped = node.directory_stamp(), 0.0
    log.info("the witness %s starts (%d peers)", node.keys.name, len(witness.peers))
    try:
        while not stop.is_set():
            if node.directory_stamp() != stamp:
                stamp = node.directory_stamp()
                witness.directory = node.directory()
            try:
                if time.monotonic() - gossiped >= every:
                    counts["gossiped"] += witness.gossip()
                    gossiped = time.monotonic()
                step = witness.step()
                counts.update(applied=step.applied, found=step.found, sent=step.sent, refused=len(step.refused))
                if step.found:
                    log.warning("the witness found %d fork(s) or rollback(s): incidents sent", step.found)
                if metrics is not None:
                    metrics.party_step(transport, counts["refused"], None)
            except (StorageError, BrokerUnavailable) as exc:
                if metrics is not None:
                    metrics.down()
                log.warning("the witness's loop will retry in 1 s: %s", exc)
                stop.wait(1.0)
            except FlagLedgerError as exc:  # a peer's key not yet imported: its gossip waits
                log.warning("the witness's loop will retry in 1 s: %s", exc)
                stop.wait(1.0)
    finally:
        witness.store.close()
    return dict(counts)
