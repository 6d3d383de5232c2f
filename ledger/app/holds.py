"""Fork holds: a peer's checkpoint must extend the last one this node holds from that agency; one that does
not is a fork, and the agency's stream is held (its events parked, an alarm raised) until an administrator
lifts the hold after resolving it out of band."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.app.checkpoints import CHECKPOINT_TOPIC, Checkpoint, verify_with_keyring
from ledger.app.values import Actor
from ledger.domain.bounds import NOTE, fit_text
from ledger.domain.checkpoints import AgencyHold
from ledger.domain.types import Action
from ledger.errors import CheckpointFork, InputError, StateConflict
from ledger.merkle import EMPTY_ROOT, verify_consistency

if TYPE_CHECKING:
    from ledger.log.envelope import Envelope

__all__ = ["CheckpointFork", "check_extends", "check_incoming", "hold_agency", "hold_reason", "holds", "lift_hold"]

alarm = logging.getLogger("flagledger.alarm")


def check_extends(prev: Checkpoint | None, cp: Checkpoint) -> None:
    """``cp`` must name ``prev`` (the last checkpoint of its agency, or none) and prove it extends it."""
    held = (prev.tree_size, prev.root) if prev is not None else (0, EMPTY_ROOT)
    if (cp.prev_size, cp.prev_root) != held:
        raise CheckpointFork(
            f"agency {cp.origin}'s checkpoint of size {cp.tree_size} names a predecessor of size {cp.prev_size} "
            f"(root {cp.prev_root.hex()[:16]}…), but the last one held is size {held[0]} "
            f"(root {held[1].hex()[:16]}…): a fork"
        )
    if not verify_consistency(cp.prev_size, cp.tree_size, list(cp.consistency), cp.prev_root, cp.root):
        raise CheckpointFork(
            f"agency {cp.origin}'s checkpoint of size {cp.tree_size} (root {cp.root.hex()[:16]}…) is not "
            f"consistent with its checkpoint of size {cp.prev_size}: a fork or rewritten history"
        )


def check_incoming(app: LedgerAccess, env: Envelope, event: Any) -> None:
    """Check a peer's ``CheckpointSigned`` before it is appended: signed by the agency's key and consistent
    with the last checkpoint this node holds from that agency (the previous event of the same stream, which
    stream order guarantees is already here). Raises :class:`CheckpointFork` or IntegrityError."""
    h = env.header
    cp = Checkpoint.from_event(h.origin, event)
    verify_with_keyring(app, cp)
    prev: Checkpoint | None = None
    rows = app.recorder.select_events(UUID(h.stream), lte=h.version - 1, desc=True, limit=1)
    if rows and rows[0].topic == CHECKPOINT_TOPIC:
        stored = app.signed_mapper.open(rows[0].state)
        prev = Checkpoint.from_event(stored.header.origin, app.signed_mapper.decode(stored))
    check_extends(prev, cp)


def _hold_row_topic(app: LedgerAccess, held: str) -> str | None:
    rows = app.recorder.select_events(AgencyHold.create_id(held), desc=True, limit=1)
    return rows[0].topic if rows else None


def hold_reason(app: LedgerAccess, agency: str) -> str | None:
    """Why this node holds ``agency``'s stream, or None. One indexed read (no cache: an operator may lift
    the hold from another process)."""
    topic = _hold_row_topic(app, agency)
    if topic is None or not topic.endswith(".Placed"):
        return None
    hold = app.load(AgencyHold, AgencyHold.create_id(agency), "agency hold")
    return hold.reason


def hold_agency(app: LedgerAccess, held: str, reason: str, code: str) -> None:
    """Record (as a local ledger event) that ``held``'s events are no longer applied, and raise the alarm."""
    alarm.error("ALARM: agency %s is on hold: %s", held, reason)
    recorder = sorted(app.hosted)[0]  # any hosted agency may record the node's own decision
    hold = app.find(AgencyHold, AgencyHold.create_id(held)) or AgencyHold(agency=recorder, held=held)
    if hold.active:
        return
    hold.place(fit_text(reason, NOTE), code)  # the reason may quote a peer's fields: never too long to record
    app.save_as(hold.agency, hold)


def lift_hold(app: LedgerAccess, actor: Actor, held: str, note: str) -> None:
    """An administrator lifts a hold after resolving the fork out of band; parked events can then be replayed."""
    app.authorise(actor, Action.ADMINISTER)
    if not note.strip():
        raise InputError("say what was checked before lifting the hold (--note)")
    hold = app.find(AgencyHold, AgencyHold.create_id(held))
    if hold is None or not hold.active:
        raise StateConflict("that agency is not on hold")
    hold.lift(by=str(actor), note=note)
    app.save_as(hold.agency, hold)


def holds(app: LedgerAccess) -> list[dict[str, Any]]:
    """Every agency currently held, with the recorded reason."""
    out: list[dict[str, Any]] = []
    for n in _select_topic(app, "ledger.domain.checkpoints:AgencyHold.Placed"):
        hold = app.load(AgencyHold, n.originator_id, "agency hold")
        if hold.active and all(o["agency"] != hold.held for o in out):
            out.append({"agency": hold.held, "reason": hold.reason, "position": n.id})
    return out


def _select_topic(app: LedgerAccess, topic: str) -> list[Any]:
    out: list[Any] = []
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=1000, topics=[topic])
        out.extend(rows)
        if len(rows) < 1000:
            return out
        start = rows[-1].id + 1
