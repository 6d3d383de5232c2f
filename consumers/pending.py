"""Events kept in ``ingest_pending`` until what they wait for arrives: the missing events ahead of a gap in their
stream, (a peer's flag change) the roster event certifying the staff keys that signed it, for at most
:data:`ROSTER_HOLD`, or (a peer's number change) the move making its linker the person's residence, for at most
:data:`RESIDENCE_HOLD`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from consumers.decide import Outcome
from ledger.app import FlagLedger
from ledger.log.envelope import Envelope
from ledger.runtime.tables import pending_events

__all__ = ["RESIDENCE_HOLD", "ROSTER_HOLD", "PendingStore", "pending_events"]

# how long a peer's flag change waits for the roster event certifying its staff keys: an agency's events share
# one partition in its log order, so a genuine one is late only while its roster event is held up here (a gap,
# a parked key event an operator is fixing). Longer, and it is parked as a forgery (``staff_signature``)
ROSTER_HOLD = timedelta(hours=24)
# how long a peer's number change waits for the move that makes its linker the person's residence: that move is
# another agency's event (another partition), late here while it is in flight or held up. Longer, and it is
# parked ``not_residence`` (a stranger's link onto a victim's number must never apply on a guess)
RESIDENCE_HOLD = timedelta(hours=24)

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
        self._swept = float("-inf")  # (monotonic) when events waiting for a roster or a move were last looked at

    def sweep_due(self, every: float = 60.0) -> bool:
        """Whether it is time to look at the events waiting for a roster or a move again (at most once a minute:
        each look decides them again); counts this look."""
        now = time.monotonic()
        if now - self._swept < every:
            return False
        self._swept = now
        return True

    def parked(self, outcome: Outcome, raw: bytes) -> None:
        if self.on_parked is not None:
            self.on_parked(outcome, raw)
        else:
            log.error("event released from a gap was refused and is not applied: [%s] %s", outcome.code, outcome.reason)

    def hold(self, env: Envelope, raw: bytes) -> None:
        """Keep ``env`` until what it waits for arrives; held again (a redelivery), it keeps its first time."""
        h = env.header
        with self.engine.begin() as conn:
            key = (
                (pending_events.c.stream == h.stream)
                & (pending_events.c.version == h.version)
                & (pending_events.c.leaf == env.hash_hex)
            )
            if conn.execute(select(pending_events.c.leaf).where(key)).first() is None:
                conn.execute(
                    pending_events.insert().values(
                        stream=h.stream,
                        version=h.version,
                        leaf=env.hash_hex,
                        envelope=raw,
                        held_at=self.app.clock().isoformat(),
                    )
                )

    def held_since(self, env: Envelope) -> datetime | None:
        """When ``env`` was first held (None: not held, or held before the time was kept)."""
        h = env.header
        with self.engine.connect() as conn:
            at = conn.execute(
                select(pending_events.c.held_at).where(
                    (pending_events.c.stream == h.stream)
                    & (pending_events.c.version == h.version)
                    & (pending_events.c.leaf == env.hash_hex)
                )
            ).scalar()
        return datetime.fromisoformat(at) if at else None

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
