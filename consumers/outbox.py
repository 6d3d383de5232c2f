"""What a node publishes: its own agencies' events of shared aggregates, in log order (the outbox)."""

from __future__ import annotations

from collections.abc import Iterator

from ledger.app import FlagLedger, is_local_only

__all__ = ["publishable"]


def publishable(app: FlagLedger, after: int = 0, page: int = 1000) -> Iterator[tuple[int, str, bytes]]:
    """(position, origin agency, decrypted envelope bytes) for every event this node originated and may share.

    Intake notes, approvals, staff and reads of protected details are local-only and never yielded.
    """
    local_topics: dict[str, bool] = {}
    for position, _, env in app.envelopes(start=after + 1, page=page):
        h = env.header
        if h.origin not in app.hosted:
            continue  # replicated from another agency: its origin publishes it
        local = local_topics.get(h.topic)
        if local is None:
            local = local_topics[h.topic] = is_local_only(h.topic)
        if not local:
            yield position, h.origin, env.to_bytes()
