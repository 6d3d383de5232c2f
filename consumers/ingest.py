"""Ingest one envelope published by another agency: verify, chain-check, append with its original signature.

Transport-agnostic: the Kafka consumer loop, tests and the in-process demo all call :func:`ingest`.
Outcomes never raise for bad input: a poison message comes back as ``Outcome(kind="parked", reason=…)``
for the caller to park (dead-letter topic + local table); nothing about it reaches the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError as LibIntegrityError
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.utils import resolve_topic
from sqlalchemy import select

from ledger.app import FlagLedger, is_local_only
from ledger.app.checkpoints import CHECKPOINT_TOPIC, is_checkpoint_topic
from ledger.app.holds import check_incoming, hold_agency, hold_reason
from ledger.domain.authority import Owner, append_violation, foreign_writer_reason, payload_violation
from ledger.domain.event_fields import check_event
from ledger.errors import FlagLedgerError, IntegrityError, StateConflict, StorageError
from ledger.log.envelope import GENESIS, Envelope
from ledger.runtime.tables import pending_events

__all__ = ["Outcome", "PendingStore", "ingest", "ingest_many"]

log = logging.getLogger("flagledger.consumers")

Kind = Literal["applied", "duplicate", "own", "held_gap", "parked"]



@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str = ""
    code: str = ""
    applied: int = 0  # events appended, including held ones released by this one


_APPLIED_ONE = Outcome("applied", applied=1)  # immutable: one instance serves every event applied alone


class PendingStore:
    """Events that arrived ahead of a gap in their stream, kept until the missing ones arrive (every event
    that arrived for a place, each under its own hash: see ``leaf``)."""

    def __init__(self, app: FlagLedger, engine: object) -> None:
        from sqlalchemy import Engine

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
        from projections.base import upsert

        with self.engine.begin() as conn:
            upsert(
                conn,
                pending_events,
                [{"stream": env.header.stream, "version": env.header.version, "leaf": env.hash_hex,
                  "envelope": raw}],
                ["stream", "version", "leaf"],
            )

    def candidates(self, stream: str, version: int) -> list[bytes]:
        """The events waiting for ``version`` of ``stream`` (usually one; more when someone forged or forked it)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pending_events.c.envelope).where(
                    (pending_events.c.stream == stream) & (pending_events.c.version == version)
                ).order_by(pending_events.c.leaf)
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


# topics found to name a shared flagledger event class: a fact of this code, not of any message, so it is
# kept for the life of the process (a topic failing the check is checked again each time, and refused)
_shared_topics: set[str] = set()


def _check_schema(env: Envelope) -> UUID:
    """The topic must name a shared event class of ours and the stream a UUID in canonical text (returned);
    anything else is a schema violation (``FlagLedgerError`` with code ``schema``, or ``ValueError`` for a
    stream that is no UUID at all)."""
    topic = env.header.topic
    if topic not in _shared_topics:
        if not topic.startswith("ledger.domain.") or ":" not in topic:
            raise FlagLedgerError(f"topic {topic!r} is not a flagledger event", code="schema")
        try:
            resolve_topic(topic)
            local = is_local_only(topic)
        except Exception as exc:  # the library raises TopicError / ValueError / AttributeError
            raise FlagLedgerError(f"unknown event topic {topic!r}", code="schema") from exc
        if local:
            raise FlagLedgerError(f"{topic} is local-only and must never be published", code="schema")
        _shared_topics.add(topic)
    stream = UUID(env.header.stream)
    if str(stream) != env.header.stream:
        # UUID() also reads upper case, braces and a "urn:uuid:" prefix, but the log's rows are read back as
        # str(UUID): a stream spelled otherwise would be stored and then fail every audit as a broken chain
        raise FlagLedgerError(f"stream id {env.header.stream!r} is not in canonical form ({stream})", code="schema")
    return stream


def ingest(
    app: FlagLedger, raw: bytes, pending: PendingStore | None = None, *, accept_revoked_key: bool = False
) -> Outcome:
    """Apply one published envelope to the local ledger, exactly once and in stream order.

    ``accept_revoked_key``: an operator confirmed with the originating agency that this event, signed by a
    key revoked since, is genuine (``consumers replay ID --accept-revoked-key``); see :func:`_revoked_late`.
    """
    try:
        env = Envelope.from_bytes(raw)
        h = env.header
        stream = _check_schema(env)
        app.signed_mapper.verify(env)
        event = app.signed_mapper.decode(env, stream)
        if h.origin in app.hosted:
            # our own event read back from the topic: skipped only if it is the very event our log holds
            # (a forgery naming a hosted agency would otherwise vanish without being parked)
            return _own(app, env)
        bad = payload_violation(h.topic, h.origin, vars(event), stream, h.version)
    except (StorageError, StateConflict):
        raise  # a failed read of our own stream is the database's fault, not the message's: retried
    except (FlagLedgerError, ValueError) as exc:
        return Outcome("parked", str(exc), getattr(exc, "code", "malformed"))
    if bad is not None:  # e.g. a new stream opened in another agency's name
        return _foreign(env, bad)
    held = hold_reason(app, h.origin)
    if held is not None:  # kept (parked), not applied, until an operator lifts the hold and replays it
        return Outcome(
            "parked",
            f"agency {h.origin} is on hold ({held}); after `flagledger audit release {h.origin}` replay this",
            "agency_held",
        )
    head = app.signed_store.head(stream)
    if head is not None and h.version > 1:  # (a stream not here yet: held behind the gap, checked on release)
        bad = append_violation(h.topic, h.origin, app.signed_store.owner(stream))
        if bad is not None:
            return _foreign(env, bad)
    head_version, head_hash = head if head is not None else (0, GENESIS)
    if h.version <= head_version:
        outcome = _duplicate_or_fork(app, env)
        if outcome.kind == "duplicate" and pending is not None:
            # the redelivery after a failure that struck while releasing the events behind a gap: finish that
            released = _release_waiting(app, pending, h.stream, head_version + 1)
            if released:
                return Outcome("applied", applied=released)
        return _hold_on_checkpoint_fork(app, env, outcome)
    if h.version > head_version + 1:
        if pending is None:
            return Outcome("parked", f"gap: v{head_version + 1} of stream {h.stream} is missing", "gap")
        pending.hold(env, raw)
        return Outcome("held_gap", f"waiting for v{head_version + 1} of stream {h.stream}", "gap")
    if h.prev != head_hash:
        forked = Outcome("parked", f"v{h.version} of stream {h.stream} does not chain to v{head_version}", "fork")
        return _hold_on_checkpoint_fork(app, env, forked)
    late = None if accept_revoked_key else _revoked_late(app, env)
    if late is not None:
        return late
    if h.topic == CHECKPOINT_TOPIC:
        try:
            check_incoming(app, env, event)
        except IntegrityError as exc:
            return _hold_on_checkpoint_fork(app, env, Outcome("parked", str(exc), exc.code))
    oversize = _out_of_bounds(event)
    if oversize is not None:
        return oversize
    applied = _append(app, env, raw, stream)
    if pending is not None:
        _settle(app, pending, h.stream, h.version)
        applied += _release_waiting(app, pending, h.stream, h.version + 1)
    return Outcome("applied", applied=applied)


def _out_of_bounds(event: object) -> Outcome | None:
    """Park a peer's event with a field outside its rule (ledger.domain.event_fields): over its bound
    (``oversize``), of the wrong type or shape, missing or unknown (``schema``). Decided last, just before the
    append, so a duplicate, a fork or a revoked key is named as such first."""
    try:
        check_event(event, peer=True)
    except FlagLedgerError as exc:
        return Outcome("parked", str(exc), exc.code)
    return None
def _foreign(env: Envelope, why: str) -> Outcome:
    """Park an event its signer may not write: never applied, kept with a reason naming no payload value."""
    h = env.header
    return Outcome("parked", foreign_writer_reason(h.stream, h.version, h.topic, h.origin, why), "foreign_writer")


def _revoked_late(app: FlagLedger, env: Envelope) -> Outcome | None:
    """Park a new event signed by a key this node already knows to be revoked.

    Such an event verifies (it is stamped before the revocation took effect), but whoever stole the key can
    stamp an event with any time: a backdated removal of a flag, chained to the stream's current head, would
    lift a protection nationwide. A genuine event signed before the revocation reaches us before it (an
    agency's events share one partition, in its log order), so one arriving after it is kept for an operator
    to confirm with the originating agency. Redeliveries of events we hold were found duplicates before this.
    """
    h = env.header
    rec = app.keyring.revoked(h.key_id)
    if rec is None:
        return None
    assert rec.revoked_from is not None
    return Outcome(
        "parked",
        f"v{h.version} of stream {h.stream} ({h.topic}, stamped {h.time}) is signed by key {h.key_id}, revoked "
        f"from {rec.revoked_from.isoformat()} ({rec.revocation_reason or 'no reason given'}) and arrived after "
        f"the revocation: whoever holds a stolen key can backdate events. Confirm with agency {h.origin} that "
        f"it sent event {h.event_id}, then `flagledger consumers replay ID --accept-revoked-key`",
        "revoked_key_late",
    )


def _release_waiting(app: FlagLedger, pending: PendingStore, stream: str, version: int) -> int:
    """Apply the events that were waiting behind a filled gap, in order.

    Of several events waiting for one place, the one its stream's owner wrote applies and the others are
    parked (a peer's forgery as ``foreign_writer``, a second history as ``fork``). Each is dropped from the
    pending table only after it is in the ledger or parked: a crash in between leaves it pending, and the next
    arrival finds it a duplicate and drops it then (it was lost before this order).
    """
    applied = 0
    while raws := pending.candidates(stream, version):
        placed = False  # this version is in the ledger now
        for raw in raws:
            outcome = ingest(app, raw)
            if outcome.kind == "applied":
                applied += outcome.applied
                placed = True
            elif outcome.kind == "duplicate":
                placed = True
            elif outcome.kind == "parked":
                # e.g. a forgery or a forked checkpoint that waited behind a gap: kept as evidence
                pending.parked(outcome, raw)
            else:
                return applied  # still a gap: the operator sees it in the pending table
        pending.drop(stream, version)
        if not placed:
            return applied
        version += 1
    return applied


def _settle(app: FlagLedger, pending: PendingStore, stream: str, version: int) -> None:
    """``version`` of ``stream`` has just entered the ledger directly: whatever still waited for that place (a
    forgery held before anyone could tell, a fork) is decided now — parked — instead of waiting for good."""
    raws = pending.candidates(stream, version)
    for raw in raws:
        outcome = ingest(app, raw)
        if outcome.kind == "parked":
            pending.parked(outcome, raw)
    if raws:
        pending.drop(stream, version)


def _hold_on_checkpoint_fork(app: FlagLedger, env: Envelope, outcome: Outcome) -> Outcome:
    """A checkpoint that does not extend the last one held from its agency: that agency showed two histories.
    Its stream is held (nothing more from it is applied) until an operator resolves it; see the README."""
    if outcome.kind != "parked" or not is_checkpoint_topic(env.header.topic):
        return outcome
    origin = env.header.origin
    reason = f"checkpoint fork from agency {origin}: {outcome.reason}"
    hold_agency(app, origin, reason, "checkpoint_fork")
    return Outcome("parked", f"{reason}; agency {origin} is now on hold", "checkpoint_fork")


def _own(app: FlagLedger, env: Envelope) -> Outcome:
    if _duplicate_or_fork(app, env).kind == "duplicate":
        return Outcome("own")
    h = env.header
    return Outcome("parked", f"v{h.version} of stream {h.stream} claims agency {h.origin}, hosted here, "
                             "but is not the event this node holds", "forged_own")


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


def _append(app: FlagLedger, env: Envelope, raw: bytes, stream: UUID) -> int:
    h = env.header
    stored = StoredEvent(stream, h.version, h.topic, app.signed_mapper.protect(raw))
    try:
        app.recorder.insert_events([stored])
    except LibIntegrityError as exc:  # a concurrent ingest of the same event: the unique key refuses the second
        raise StateConflict(f"could not append v{h.version} of stream {h.stream}: {exc}") from exc
    except PersistenceError as exc:  # connection lost, disk full, …: nothing of this event was kept
        raise StorageError(
            f"could not append v{h.version} of stream {h.stream}: {exc}; nothing was kept — the message is "
            "delivered again once the database is back"
        ) from exc
    app.signed_store.remember(stream, (h.version, env.hash_hex))
    if h.version == 1:
        app.signed_store.remember_owner(stream, (h.origin, h.topic.rpartition(".")[0]))
    if h.topic.startswith("ledger.domain.keys:"):
        app.apply_key_events([(env, stored)])
    return 1


def ingest_many(app: FlagLedger, raws: Sequence[bytes], pending: PendingStore | None = None) -> list[Outcome]:
    """:func:`ingest` for each envelope in order, appending the applicable ones in one transaction.

    One commit per received event capped Kafka ingest near the one-event-per-save rate (figure "ingest from
    Kafka"); every decision is the same as :func:`ingest`'s, taken against the streams' heads including the
    events staged earlier in this call. Key events and events that release a held successor go through
    :func:`ingest` itself after what is staged has been written, so the key registry and the pending
    table see exactly the order of arrival. If the batched write is refused (another writer got there
    first), each staged event is decided again on its own.
    """
    out: list[Outcome] = []
    staged: list[tuple[int, Envelope, bytes, UUID]] = []
    staged_hash: dict[tuple[str, int], bytes] = {}
    heads: dict[UUID, tuple[int, str]] = {}
    owners: dict[UUID, Owner] = {}  # the owner of each stream staged (its v1 may be staged, not yet stored)
    waiting = set(pending.waiting()) if pending is not None else set()
    held: dict[str, bool] = {}  # per origin: is that agency on hold (cleared whenever ingest() decides one)

    def on_hold(origin: str) -> bool:
        if origin not in held:
            held[origin] = hold_reason(app, origin) is not None
        return held[origin]

    def flush() -> None:
        if not staged:
            return
        protect = app.signed_mapper.protect
        rows = [StoredEvent(stream, e.header.version, e.header.topic, protect(r)) for _, e, r, stream in staged]
        try:
            app.recorder.insert_events(rows)
        except Exception:  # decided again one by one: duplicates and forks are named as ingest names them
            for index, _, r, _ in staged:
                out[index] = ingest(app, r, pending)
        else:
            remember, remember_owner = app.signed_store.remember, app.signed_store.remember_owner
            for _, e, _, stream in staged:
                remember(stream, (e.header.version, e.hash_hex))
                if e.header.version == 1:
                    remember_owner(stream, (e.header.origin, e.header.topic.rpartition(".")[0]))
        staged.clear()
        staged_hash.clear()
        heads.clear()
        owners.clear()

    verify, decode = app.signed_mapper.verify, app.signed_mapper.decode
    revoked = app.keyring.revoked
    for raw in raws:
        try:
            env = Envelope.from_bytes(raw)
            h = env.header
            # what needs more than a chain check goes through ingest() itself, after what is staged: our own
            # events read back (forgeries naming us are parked), keys, checkpoints (fork checks and holds),
            # agencies on hold, events a held successor waits for (or held ones compete with), and events under a
            # revoked key
            if (
                h.origin in app.hosted
                or h.topic.startswith("ledger.domain.keys:")
                or is_checkpoint_topic(h.topic)
                or (h.stream, h.version + 1) in waiting
                or (h.stream, h.version) in waiting
                or on_hold(h.origin)
                or revoked(h.key_id) is not None
            ):
                flush()
                out.append(ingest(app, raw, pending))
                waiting = set(pending.waiting()) if pending is not None else set()
                held.clear()
                continue
            stream = _check_schema(env)
            verify(env)
            event = decode(env, stream)  # raises what check_decodes would; the event's fields are checked last
            bad = payload_violation(h.topic, h.origin, vars(event), stream, h.version)
        except (StorageError, StateConflict):
            raise  # the database failed (or another writer won) in flush() or ingest(): retried, never parked
        except (FlagLedgerError, ValueError) as exc:
            out.append(Outcome("parked", str(exc), getattr(exc, "code", "malformed")))
            continue
        if bad is not None:
            out.append(_foreign(env, bad))
            continue
        head = heads.get(stream)
        if head is None and h.version > 1:
            # a first event is staged unread: if its stream exists after all, the store's unique key
            # refuses the batch and flush() decides each event on its own (duplicate or fork, as ingest)
            head = app.signed_store.head(stream)
        if head is not None and h.version > 1:
            owner = owners.get(stream) or app.signed_store.owner(stream)
            bad = append_violation(h.topic, h.origin, owner)
            if bad is not None:
                out.append(_foreign(env, bad))
                continue
            if owner is not None:
                owners[stream] = owner
        head_version, head_hash = head if head is not None else (0, GENESIS)
        if h.version <= head_version:
            mine = staged_hash.get((h.stream, h.version))
            if mine is None:
                out.append(_duplicate_or_fork(app, env))
            elif mine == env.leaf_hash:
                out.append(Outcome("duplicate"))
            else:
                out.append(Outcome("parked", f"v{h.version} of stream {h.stream} differs from the event already "
                                   "held: a fork or rewritten history", "fork"))
        elif h.version > head_version + 1:
            if pending is None:
                out.append(Outcome("parked", f"gap: v{head_version + 1} of stream {h.stream} is missing", "gap"))
            else:
                pending.hold(env, raw)
                waiting.add((h.stream, h.version))
                out.append(Outcome("held_gap", f"waiting for v{head_version + 1} of stream {h.stream}", "gap"))
        elif h.prev != head_hash:
            out.append(Outcome("parked", f"v{h.version} of stream {h.stream} does not chain to v{head_version}",
                               "fork"))
        elif (oversize := _out_of_bounds(event)) is not None:
            out.append(oversize)
        else:
            staged.append((len(out), env, raw, stream))
            staged_hash[(h.stream, h.version)] = env.leaf_hash
            heads[stream] = (h.version, env.hash_hex)
            if h.version == 1:
                owners[stream] = (h.origin, h.topic.rpartition(".")[0])
            out.append(_APPLIED_ONE)
    flush()
    return out
