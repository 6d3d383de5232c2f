"""A node's pending table as the consumer wires it: what it refuses on release is parked in the parked table
(raising incidents), never dropped."""

from __future__ import annotations

from consumers.ingest import Outcome, PendingStore
from consumers.parked import park
from ledger.runtime.bootstrap import Node

__all__ = ["pending_parking"]


def pending_parking(node: Node) -> PendingStore:
    """``node``'s pending table, parking what it refuses on release into its parked table."""
    pending = PendingStore(node.app, node.engine)

    def park_released(outcome: Outcome, raw: bytes) -> None:
        park(node, outcome, raw, "released from ingest_pending")

    pending.on_parked = park_released
    return pending
