"""Ingest one envelope published by another agency: verify, chain-check, append with its original signature.

Transport-agnostic: the Kafka consumer loop, tests and the in-process demo all call :func:`ingest`.
Outcomes never raise for bad input: a poison message comes back as ``Outcome(kind="parked", reason=…)``
for the caller to park (dead-letter topic + local table); nothing about it reaches the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError as LibIntegrityError
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.utils import resolve_topic
from sqlalchemy import Column, Integer, LargeBinary, String, Table, select

from ledger.app import FlagLedger, is_local_only
from ledger.envelope import GENESIS, Envelope
from ledger.errors import FlagLedgerError, StateConflict, StorageError
from projections.base import metadata

__all__ = ["Outcome", "PendingStore", "ingest"]

Kind = Literal["applied", "duplicate", "own", "held_gap", "parked"]

pending_events = Table(
    "ingest_pending",
    metadata,
    Column("stream", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("envelope", LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str = ""
    code: str = ""
    applied: int = 0  # events appended, including held ones released by this one


class PendingStore:
    """Events that arrived ahead of a gap in their stream, kept until the missing ones arrive."""

    def __init__(self, app: FlagLedger, engine: object) -> None:
        from sqlalchemy import Engine

        assert isinstance(engine, Engine)
        self.engine = engine
        self.app = app

    def hold(self, env: Envelope, raw: bytes) -> None:
        from projections.base import upsert

        with self.engine.begin() as conn:
            upsert(
                conn,
                pending_events,
                [{"stream": env.header.stream, "version": env.header.version, "envelope": raw}],
                ["stream", "version"],
            )

    def peek(self, stream: str, version: int) -> bytes | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pending_events.c.envelope).where(
                    (pending_events.c.stream == stream) & (pending_events.c.version == version)
                )
            ).first()
        return None if row is None else bytes(row[0])

    def drop(self, stream: str, version: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                pending_events.delete().where(
                    (pending_events.c.stream == stream) & (pending_events.c.version == version)
                )
            )

    def waiting(self) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(pending_events.c.stream, pending_events.c.version))
            return [(str(s), int(v)) for s, v in rows]


def _check_schema(env: Envelope) -> None:
    """The topic must name a shared event class of ours; anything else is a schema violation."""
    topic = env.header.topic
    if not topic.startswith("ledger.domain.") or ":" not in topic:
        raise FlagLedgerError(f"topic {topic!r} is not a flagledger event", code="schema")
    try:
        resolve_topic(topic)
        local = is_local_only(topic)
    except Exception as exc:  # the library raises TopicError / ValueError / AttributeError
        raise FlagLedgerError(f"unknown event topic {topic!r}", code="schema") from exc
    if local:
        raise FlagLedgerError(f"{topic} is local-only and must never be published", code="schema")
    UUID(env.header.stream)


def ingest(app: FlagLedger, raw: bytes, pending: PendingStore | None = None) -> Outcome:
    """Apply one published envelope to the local ledger, exactly once and in stream order."""
    try:
        env = Envelope.from_bytes(raw)
        h = env.header
        if h.origin in app.hosted:
            return Outcome("own")
        _check_schema(env)
        app.signed_mapper.verify(env)
        app.signed_mapper.decode(env)
    except (FlagLedgerError, ValueError) as exc:
        return Outcome("parked", str(exc), getattr(exc, "code", "malformed"))
    stream = UUID(h.stream)
    head = app.signed_store.head(stream)
    head_version, head_hash = head if head is not None else (0, GENESIS)
    if h.version <= head_version:
        outcome = _duplicate_or_fork(app, env)
        if outcome.kind == "duplicate" and pending is not None:
            # the redelivery after a failure that struck while releasing the events behind a gap: finish that
            released = _release_waiting(app, pending, h.stream, head_version + 1)
            if released:
                return Outcome("applied", applied=released)
        return outcome
    if h.version > head_version + 1:
        if pending is None:
            return Outcome("parked", f"gap: v{head_version + 1} of stream {h.stream} is missing", "gap")
        pending.hold(env, raw)
        return Outcome("held_gap", f"waiting for v{head_version + 1} of stream {h.stream}", "gap")
    if h.prev != head_hash:
        return Outcome("parked", f"v{h.version} of stream {h.stream} does not chain to v{head_version}", "fork")
    applied = _append(app, env, raw)
    if pending is not None:
        applied += _release_waiting(app, pending, h.stream, h.version + 1)
    return Outcome("applied", applied=applied)


def _release_waiting(app: FlagLedger, pending: PendingStore, stream: str, version: int) -> int:
    """Apply the events that were waiting behind a filled gap, in order.

    Each is dropped from the pending table only after it is in the ledger: a crash in between leaves it
    pending, and the next arrival finds it a duplicate and drops it then (it was lost before this order).
    """
    applied = 0
    while (raw := pending.peek(stream, version)) is not None:
        outcome = ingest(app, raw)
        if outcome.kind == "applied":
            applied += outcome.applied
        elif outcome.kind != "duplicate":
            return applied  # parked or still a gap: the operator sees it in `consumers parked`/pending
        pending.drop(stream, version)
        version += 1
    return applied


def _duplicate_or_fork(app: FlagLedger, env: Envelope) -> Outcome:
    h = env.header
    rows = app.recorder.select_events(UUID(h.stream), gt=h.version - 1, lte=h.version)
    if rows:
        stored = app.signed_mapper.open(rows[0].state)
        if stored.leaf_hash == env.leaf_hash:
            return Outcome("duplicate")
    return Outcome(
        "parked",
        f"v{h.version} of stream {h.stream} differs from the event already held: a fork or rewritten history",
        "fork",
    )


def _append(app: FlagLedger, env: Envelope, raw: bytes) -> int:
    h = env.header
    stored = StoredEvent(UUID(h.stream), h.version, h.topic, app.signed_mapper.protect(raw))
    try:
        app.recorder.insert_events([stored])
    except LibIntegrityError as exc:  # a concurrent ingest of the same event: the unique key refuses the second
        raise StateConflict(f"could not append v{h.version} of stream {h.stream}: {exc}") from exc
    except PersistenceError as exc:  # connection lost, disk full, …: nothing of this event was kept
        raise StorageError(
            f"could not append v{h.version} of stream {h.stream}: {exc}; nothing was kept — the message is "
            "delivered again once the database is back"
        ) from exc
    app.signed_store.remember(UUID(h.stream), (h.version, env.hash_hex))
    if h.topic.startswith("ledger.domain.keys:"):
        app.apply_key_events([(env, stored)])
    return 1
