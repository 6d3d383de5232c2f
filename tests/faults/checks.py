"""The checks every fault must pass, written once.

After a fault (and the restart of whatever died), for each node:

* ``audit verify`` passes (every signature, chain link and row/header agreement);
* no event appears twice (event ids unique in the log) — an effect applied twice would be a second event;
* the projections, once caught up (what a restarted node does first), equal a rebuild from the log;
* every provision request that was held before the fault is still held or decided, and the held queue
  lists exactly the requests whose status is held;

and between nodes, once the peers have converged: every event the origin published is in the receiver's log
exactly once, and nothing claiming that origin is there that the origin did not publish (no event lost).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select

from consumers.outbox import publishable
from ledger.audit.verify import verify_log
from ledger.domain.types import ProvisionStatus
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node, open_node
from projections.queues import held_queue

__all__ = [
    "NodeCheck",
    "assert_node_sound",
    "check_node",
    "completeness",
    "held_requests",
    "projection_dump",
]

HELD_TOPIC = "ledger.domain.provision:ProvisionRequest.Held"
SETTLED = {ProvisionStatus.HELD.value, ProvisionStatus.PROVIDED_MANUALLY.value, ProvisionStatus.REFUSED.value}


@dataclass
class NodeCheck:
    events: int = 0
    duplicates: int = 0
    audit_ok: bool = False
    audit_finding: str = ""
    projection_diff: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (live rows, rebuilt rows)
    held_lost: list[str] = field(default_factory=list)
    queue_mismatch: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.audit_ok
            and not self.duplicates
            and not self.projection_diff
            and not self.held_lost
            and not self.queue_mismatch
        )


def projection_dump(node: Node) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, sorted, keyed by table name."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with node.engine.connect() as conn:
        for projection in node.projector.projections:
            for table in projection.tables:
                rows = conn.execute(select(table)).all()
                dump[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return dump


def held_requests(node: Node) -> set[str]:
    """Ids of every provision request that was ever held on this node (from the log, not a projection)."""
    return {str(row.originator_id) for _, row, _ in node.app.envelopes() if row.topic == HELD_TOPIC}


def check_node(data_dir: Path, held_before: AbstractSet[str] = frozenset()) -> NodeCheck:
    node = open_node(data_dir)
    try:
        return _check(node, held_before)
    finally:
        node.close()


def _check(node: Node, held_before: AbstractSet[str]) -> NodeCheck:
    result = NodeCheck()
    ids = Counter(env.header.event_id for _, _, env in node.app.envelopes())
    result.events = sum(ids.values())
    result.duplicates = sum(n - 1 for n in ids.values() if n > 1)
    report = verify_log(node.app)
    result.audit_ok = report.ok
    result.audit_finding = str(report.first_bad or "")
    node.projector.catch_up()  # what a restarted node does first
    live = projection_dump(node)
    node.projector.rebuild()
    rebuilt = projection_dump(node)
    result.projection_diff = {
        name: (len(live[name]), len(rebuilt[name])) for name in live if live[name] != rebuilt[name]
    }
    held_now = held_requests(node)
    result.held_lost = sorted(held_before - held_now)
    status = {rid: node.app.provision_request(UUID(rid)).status for rid in held_now}
    result.held_lost += sorted(rid for rid, s in status.items() if s not in SETTLED)
    with node.engine.connect() as conn:
        queue = dict(conn.execute(select(held_queue.c.request_id, held_queue.c.status)).all())
    hosted_held = {rid for rid, s in status.items() if s == ProvisionStatus.HELD.value}
    queued_held = {rid for rid, s in queue.items() if s == ProvisionStatus.HELD.value}
    result.queue_mismatch = sorted(hosted_held ^ queued_held)
    return result


def completeness(receiver_dir: Path, origin_dir: Path) -> tuple[int, int, int]:
    """(published by the origin, missing at the receiver, extra or doubled at the receiver)."""
    origin = open_node(origin_dir)
    try:
        published = Counter(Envelope.from_bytes(raw).header.event_id for _, _, raw in publishable(origin.app))
        codes = set(origin.app.hosted)
    finally:
        origin.close()
    receiver = open_node(receiver_dir)
    try:
        held = Counter(env.header.event_id for _, _, env in receiver.app.envelopes() if env.header.origin in codes)
    finally:
        receiver.close()
    missing = sum((published - held).values())
    extra = sum((held - published).values())
    return sum(published.values()), missing, extra


def assert_node_sound(data_dir: Path, held_before: AbstractSet[str] = frozenset()) -> NodeCheck:
    result = check_node(data_dir, held_before)
    assert result.ok, f"{data_dir.name}: {result}"
    return result
