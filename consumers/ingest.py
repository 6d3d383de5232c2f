"""Ingest one envelope published by another agency: verify, chain-check, append with its original signature.

Transport-agnostic: the Kafka consumer loop, tests and the in-process demo all call :func:`ingest` (or
:func:`ingest_many` for a poll's worth). Both take the one decision of :mod:`consumers.decide` and write through
the store's one door (:class:`ledger.log.store.StoreDoor`). Outcomes never raise for bad input: a poison message comes
back as ``Outcome(kind="parked", reason=…)`` for the caller to park (dead-letter topic + local table); nothing
about it reaches the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from uuid import UUID

from consumers.decide import (
    APPLY,
    HELD,
    LINK_TOPICS,
    MOVE_TOPIC,
    ROSTER_TOPIC_PREFIX,
    Outcome,
    StoreView,
    admit,
    decide,
    parse,
)
from consumers.pending import RESIDENCE_HOLD, ROSTER_HOLD, PendingStore
from ledger.app import FlagLedger
from ledger.app.checkpoints import is_checkpoint_topic
from ledger.app.holds import hold_reason
from ledger.domain.authority import Owner
from ledger.errors import Code, FlagLedgerError, StateConflict, StorageError
from ledger.log.envelope import Envelope
from ledger.log.store import KEY_TOPIC_PREFIX, owner_of

__all__ = [
    "Outcome",
    "PendingStore",
    "ingest",
    "ingest_many",
    "release_held",
    "release_residence_waits",
    "release_roster_waits",
]

log = logging.getLogger("flagledger.consumers")


def ingest(
    app: FlagLedger,
    raw: bytes,
    pending: PendingStore | None = None,
    *,
    accept_revoked_key: bool = False,
    roster_wait: bool | None = None,
    residence_wait: bool | None = None,
) -> Outcome:
    """Apply one published envelope to the local ledger, exactly once and in stream order.

    ``accept_revoked_key``: an operator confirmed with the originating agency that this event, signed by a
    key revoked since, is genuine (``consumers replay ID --accept-revoked-key``). ``roster_wait``: a flag
    change signed by keys its agency's roster does not hold yet comes back ``held_roster`` (default: when
    ``pending`` is given, which then keeps it); else it is parked. ``residence_wait``: likewise a number change
    by a municipality the moves recorded here rule out comes back ``held_residence``; else parked
    ``not_residence``. A move applied with ``pending`` decides the held number changes again.
    """
    env = parse(raw)
    if isinstance(env, Outcome):
        return env
    view = StoreView(app)
    admitted = admit(app, env, view)
    if isinstance(admitted, Outcome):
        return admitted
    stream, event = admitted
    h = env.header
    outcome = decide(
        app,
        env,
        stream,
        event,
        view,
        can_hold=pending is not None,
        accept_revoked_key=accept_revoked_key,
        roster_wait=roster_wait,
        residence_wait=residence_wait,
    )
    if outcome is APPLY:
        app.signed_store.door.receive([(env, raw, stream)])
        applied = 1
        if pending is not None:
            _settle(app, pending, h.stream, h.version)
            applied += _release_waiting(app, pending, h.stream, h.version + 1)
            if h.topic.startswith(ROSTER_TOPIC_PREFIX):  # a key certified: the flag changes it signed go on
                applied += release_roster_waits(app, pending, h.origin)
            if h.topic == MOVE_TOPIC:  # a residence known: the number changes it allows go on
                applied += release_residence_waits(app, pending)
        return Outcome("applied", applied=applied)
    if outcome.kind in HELD and pending is not None:  # (without, only _release_waiting asks for a wait)
        pending.hold(env, raw)
    elif outcome.kind == "duplicate" and pending is not None:
        # the redelivery after a failure that struck while releasing the events behind a gap: finish that
        head = app.signed_store.head(stream)
        released = _release_waiting(app, pending, h.stream, (head[0] if head is not None else 0) + 1)
        if released:
            return Outcome("applied", applied=released)
    return outcome


def _release_waiting(app: FlagLedger, pending: PendingStore, stream: str, version: int) -> int:
    """Apply the events that were waiting behind a filled gap (or for their roster, or a move), in order.

    Of several events waiting for one place, the one its stream's owner wrote applies and the others are
    parked (a peer's forgery as ``foreign_writer``, a second history as ``fork``). Each is dropped from the
    pending table only after it is in the ledger or parked: a crash in between leaves it pending, and the next
    arrival finds it a duplicate and drops it then (it was lost before this order). A flag change still
    waiting for its roster stays, and so does everything behind it, until :data:`ROSTER_HOLD` is over; a
    number change still waiting for the move that makes its linker the residence, until :data:`RESIDENCE_HOLD`.
    """
    applied = 0
    while raws := pending.candidates(stream, version):
        placed = False  # this version is in the ledger now
        waiting: list[bytes] = []  # flag changes whose staff keys the roster does not hold yet (or links, a move)
        for raw in raws:
            outcome = ingest(app, raw, roster_wait=not placed, residence_wait=not placed)
            if outcome.kind in ("held_roster", "held_residence"):
                over = _wait_over(app, pending, raw, outcome)
                if over is None:
                    waiting.append(raw)
                    continue
                outcome = over
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
        if waiting and not placed:
            return applied  # its place is kept for it (what follows it waits too)
        for raw in waiting:  # another event took the place meanwhile: decided again, a fork now
            outcome = ingest(app, raw)
            if outcome.kind == "parked":
                pending.parked(outcome, raw)
        pending.drop(stream, version)
        if not placed:
            return applied
        version += 1
    return applied


def _wait_over(app: FlagLedger, pending: PendingStore, raw: bytes, held: Outcome) -> Outcome | None:
    """None while a flag change may still wait for its roster (a number change for a move); its refusal once
    :data:`ROSTER_HOLD` (:data:`RESIDENCE_HOLD`) is over: parked ``staff_signature`` (a key no roster event
    certified is a forgery's, and raises the incident), or ``not_residence``."""
    hold = RESIDENCE_HOLD if held.kind == "held_residence" else ROSTER_HOLD
    since = pending.held_since(Envelope.from_bytes(raw))
    if since is not None and app.clock() - since < hold:
        return None
    waited = f"held since {since.isoformat()}" if since is not None else "held"
    if held.kind == "held_residence":
        return Outcome(
            "parked",
            f"{held.reason}; {waited}, no move recorded within {hold} made it so: refused as linked by another "
            "municipality than the person's residence (if that move turns up later, `flagledger consumers replay ID`)",
            Code.NOT_RESIDENCE,
        )
    return Outcome(
        "parked",
        f"{held.reason}; {waited}, no roster event certified them within {hold}: refused as signed by "
        "no certified staff member (if the roster event turns up later, `flagledger consumers replay ID`)",
        Code.STAFF_SIGNATURE,
    )


def release_held(app: FlagLedger, pending: PendingStore, wanted: Callable[[Envelope], bool] | None = None) -> int:
    """Decide again every held event whose place is next in its stream (so not behind a gap: it waits for its
    roster or a move) — where one waiting for that place is ``wanted``, or all: applied if its keys are
    certified (its linker is the residence) now, parked if its wait is over, else left waiting. Returns the
    events applied."""
    applied = 0
    for stream, version in pending.waiting():
        head = app.signed_store.head(UUID(stream))
        if (head[0] if head is not None else 0) + 1 != version:
            continue  # behind a gap (or already released): released when the gap fills
        raws = pending.candidates(stream, version)
        if wanted is None or any(wanted(Envelope.from_bytes(r)) for r in raws):
            applied += _release_waiting(app, pending, stream, version)
    return applied


def release_roster_waits(app: FlagLedger, pending: PendingStore, origin: str | None = None) -> int:
    """:func:`release_held` for the events of ``origin`` (a roster event of it applied), or of anyone."""
    return release_held(app, pending, None if origin is None else lambda env: env.header.origin == origin)


def release_residence_waits(app: FlagLedger, pending: PendingStore) -> int:
    """:func:`release_held` for the number changes (a move applied: their linker may be the residence now)."""
    return release_held(app, pending, lambda env: env.header.topic in LINK_TOPICS)


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


class _BatchView(StoreView):
    """The store as it will be once the events staged so far in one :func:`ingest_many` call are written."""

    def __init__(self, app: FlagLedger) -> None:
        super().__init__(app)
        self.heads: dict[UUID, tuple[int, str]] = {}
        self.owners: dict[UUID, Owner] = {}  # the owner of each stream staged (its v1 may be staged, not stored)
        self.leaves: dict[tuple[str, int], bytes] = {}
        self.held: dict[str, str | None] = {}  # per origin (cleared whenever ingest() decides one)

    def head(self, stream: UUID, version: int) -> tuple[int, str] | None:
        head = self.heads.get(stream)
        if head is None and version > 1:
            # a first event is staged unread: if its stream exists after all, the store's unique key
            # refuses the batch and ingest_many decides each event on its own (duplicate or fork, as ingest)
            head = super().head(stream, version)
        return head

    def owner(self, stream: UUID) -> Owner | None:
        owner = self.owners.get(stream)
        if owner is None:
            owner = super().owner(stream)
            if owner is not None:
                self.owners[stream] = owner
        return owner

    def holds_same(self, stream: str, version: int, leaf_hash: bytes) -> bool:
        mine = self.leaves.get((stream, version))
        return super().holds_same(stream, version, leaf_hash) if mine is None else mine == leaf_hash

    def on_hold(self, origin: str) -> str | None:
        if origin not in self.held:
            self.held[origin] = hold_reason(self.app, origin)
        return self.held[origin]

    def stage(self, env: Envelope, stream: UUID) -> None:
        h = env.header
        self.leaves[(h.stream, h.version)] = env.leaf_hash
        self.heads[stream] = (h.version, env.hash_hex)
        if h.version == 1:
            self.owners[stream] = owner_of(env)

    def written(self) -> None:
        self.heads.clear()
        self.owners.clear()
        self.leaves.clear()


def ingest_many(app: FlagLedger, raws: Sequence[bytes], pending: PendingStore | None = None) -> list[Outcome]:
    """:func:`ingest` for each envelope in order, appending the applicable ones in one transaction.

    One commit per received event capped Kafka ingest near the one-event-per-save rate (figure "ingest from
    Kafka"); every decision is :func:`consumers.decide.decide`'s, taken against the streams' heads including
    the events staged earlier in this call. Key events and events that release a held successor go through
    :func:`ingest` itself after what is staged has been written, so the key registry and the pending
    table see exactly the order of arrival. If the batched write is refused (another writer got there
    first), each staged event is decided again on its own.
    """
    out: list[Outcome] = []
    staged: list[tuple[int, Envelope, bytes, UUID]] = []
    view = _BatchView(app)
    waiting = set(pending.waiting()) if pending is not None else set()
    if pending is not None and waiting and pending.sweep_due():
        # flag changes waiting for a roster event (number changes for a move) that never came: parked once their
        # wait is over
        release_held(app, pending)
        waiting = set(pending.waiting())

    def flush() -> None:
        if not staged:
            return
        try:
            app.signed_store.door.receive([(e, r, stream) for _, e, r, stream in staged])
        except Exception:  # decided again one by one: duplicates and forks are named as ingest names them
            for index, _, r, _ in staged:
                out[index] = ingest(app, r, pending)
        staged.clear()
        view.written()

    revoked = app.keyring.revoked
    for raw in raws:
        try:
            env = Envelope.from_bytes(raw)
            h = env.header
            # what needs more than a chain check goes through ingest() itself, after what is staged: our own
            # events read back (forgeries naming us are parked), keys, checkpoints (fork checks and holds), number
            # changes (checked against the log as written, chains and cycles parked), moves (releasing held number
            # changes),
            # agencies on hold, events a held successor waits for (or held ones compete with), and events under a
            # revoked key
            if (
                h.origin in app.hosted
                or h.topic.startswith(KEY_TOPIC_PREFIX)
                or h.topic.startswith(ROSTER_TOPIC_PREFIX)
                or is_checkpoint_topic(h.topic)
                or h.topic in LINK_TOPICS
                or h.topic == MOVE_TOPIC
                or (h.stream, h.version + 1) in waiting
                or (h.stream, h.version) in waiting
                or view.on_hold(h.origin) is not None
                or revoked(h.key_id) is not None
            ):
                flush()
                out.append(ingest(app, raw, pending))
                waiting = set(pending.waiting()) if pending is not None else set()
                view.held.clear()
                continue
        except (StorageError, StateConflict):
            raise  # the database failed (or another writer won) in flush() or ingest(): retried, never parked
        except (FlagLedgerError, ValueError) as exc:
            out.append(Outcome("parked", str(exc), getattr(exc, "code", Code.MALFORMED)))
            continue
        admitted = admit(app, env, view)
        if isinstance(admitted, Outcome):
            out.append(admitted)
            continue
        stream, event = admitted
        outcome = decide(app, env, stream, event, view, can_hold=pending is not None)
        if outcome is APPLY:
            staged.append((len(out), env, raw, stream))
            view.stage(env, stream)
        elif outcome.kind in HELD:
            assert pending is not None  # (decide holds only when it can)
            pending.hold(env, raw)
            waiting.add((h.stream, h.version))
        out.append(outcome)
    flush()
    return out
