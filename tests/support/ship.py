"""Deliver one node's published events to another, in log order, as its consumer would."""

from __future__ import annotations

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.runtime.bootstrap import Node

__all__ = ["ship"]


def ship(src: Node, dst: Node, after: int = 0) -> int:
    """Ingest every event ``src`` publishes after log position ``after`` into ``dst`` (each must apply), catch
    ``dst``'s views up, and return the last position shipped."""
    pending = PendingStore(dst.app, dst.engine)
    last = after
    for position, _, raw in publishable(src.app, after):
        assert ingest(dst.app, raw, pending).kind == "applied"
        last = position
    dst.projector.catch_up()
    return last
