"""Events that arrived ahead of a gap in their stream, kept in ``ingest_pending`` until the missing ones arrive."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine, select

from consumers.decide import Outcome
from ledger.app import FlagLedger
from ledger.log.envelope import Envelope
from ledger.runtime.tables import pending_events
from projections.base import upsert

__all__ = ["PendingStore", "pending_events"]

log = logging.getLogger("flagledger.consumers")


class PendingStore:
    """Events that arrived ahead of a gap in their stream, kept until the missing ones arrive (every event
    that arrived for a place, each under its own hash: see ``leaf``)."""

    def __init__(self, app: FlagLedger, engine: object) -> None:
        assert isinstance(engine, Engine)
        self.engine = engine
        self.app = app
        # where an event released from the gap and then refused goes (the consumer's parked table); else logged
        self.on_parked: Callable[[Outcome, bytes], None] | None = None

    def parked(self, outcome: Outcome, raw: bytes) -> None:
        if self.on_parked is not None:
            self.on_parked(outcome, raw)
        else:
            log.error("event released from a gap was refused and is not applied: [%s] %s", outcome.code, outcome.reason)

    def hold(self, env: Envelope, raw: bytes) -> None:
        with self.engine.begin() as conn:
            upsert(
                conn,
                pending_events,
                [{"stream": env.header.stream, "version": env.header.version, "leaf": env.hash_hex, "envelope": raw}],
                ["stream", "version", "leaf"],
            )

    def candidates(self, stream: str, version: int) -> list[bytes]:
        """The events waiting for ``version`` of ``stream`` (usually one; more when someone forged or forked it)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pending_events.c.envelope)
                .where((pending_events.c.stream == stream) & (pending_events.c.version == version))
                .order_by(pending_events.c.leaf)
            )
            return [bytes(r[0]) for r in rows]

    def drop(self, stream: str, version: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                pending_events.delete().where(
                    (pending_events.c.stream == stream) & (pending_events.c.version == version)
                )
            )

    def waiting(self) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(pending_events.c.stream, pending_events.c.version).distinct())
            return [(str(s), int(v)) for s, v in rows]
