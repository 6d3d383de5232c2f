"""The one ingest decision: apply, hold behind a gap, skip or park an envelope another agency published.

:func:`admit` reads and verifies the envelope and checks who may write it; :func:`decide` takes it against a
:class:`LedgerView` — the streams' heads and owners, the events already held, the agencies on hold — and
returns the outcome. :func:`consumers.ingest.ingest` decides against the store (:class:`StoreView`);
:func:`consumers.ingest.ingest_many` against the store overlaid with what it staged earlier in the same batch.
Both call these two functions and nothing else decides, so a rule added here holds for both paths
(``tests/integration/test_ingest_decision.py`` runs hostile envelopes through both and compares).

The decision only reads, with one exception: a checkpoint that forks its agency's history holds that agency
(:func:`_hold_on_checkpoint_fork`), recorded before the outcome is returned so that nothing more of it applies.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic

from consumers.link_moves import old_format, recorded_since, signed_before
from ledger.app import FlagLedger, is_local_only
from ledger.app.checkpoints import CHECKPOINT_TOPIC, is_checkpoint_topic
from ledger.app.holds import check_incoming, hold_agency, hold_reason
from ledger.app.residence import linker_refusal, named_move_refusal, unnamed_move_refusal
from ledger.domain.authority import Owner, append_violation, foreign_writer_reason, payload_violation
from ledger.domain.event_fields import check_event
from ledger.domain.identity import PseudonymLink
from ledger.domain.moves import ResidenceChange
from ledger.errors import Code, FlagLedgerError, IntegrityError, StateConflict, StorageError
from ledger.log.envelope import GENESIS, Envelope
from ledger.log.staff_roles import check_roles
from ledger.log.staff_roster import RosterState, check_evidence, uncertified_keys

__all__ = [
    "APPLY",
    "HELD",
    "LINK_TOPICS",
    "MOVE_TOPIC",
    "LedgerView",
    "Outcome",
    "StoreView",
    "admit",
    "decide",
    "parse",
]

Kind = Literal["applied", "duplicate", "own", "held_gap", "held_roster", "held_residence", "parked"]
# what the caller keeps in the pending table (consumers/pending.py)
HELD: frozenset[str] = frozenset({"held_gap", "held_roster", "held_residence"})
Head = tuple[int, str]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str = ""
    code: str = ""
    applied: int = 0  # events appended, including held ones released by this one


# what decide() returns for an event to append; immutable, so one instance serves every event applied alone
APPLY = Outcome("applied", applied=1)


class LedgerView(Protocol):
    """What the decision reads of the ledger (the store's, or the store with a batch's staged events)."""

    def head(self, stream: UUID, version: int) -> Head | None:
        """(version, hash hex) of the stream's last event, None for no stream; ``version``: the incoming
        event's (a view may skip the read for a first event, whose clash the store's unique key reports)."""
        ...

    def owner(self, stream: UUID) -> Owner | None: ...

    def holds_same(self, stream: str, version: int, leaf_hash: bytes) -> bool:
        """The event held at ``version`` of ``stream`` is the one with ``leaf_hash``."""
        ...

    def on_hold(self, origin: str) -> str | None:
        """Why ``origin``'s events are held (not applied), or None."""
        ...


class StoreView:
    """The ledger as the store holds it."""

    def __init__(self, app: FlagLedger) -> None:
        self.app = app

    def head(self, stream: UUID, version: int) -> Head | None:
        return self.app.signed_store.head(stream)

    def owner(self, stream: UUID) -> Owner | None:
        return self.app.signed_store.owner(stream)

    def holds_same(self, stream: str, version: int, leaf_hash: bytes) -> bool:
        app = self.app
        rows = app.recorder.select_events(UUID(stream), gt=version - 1, lte=version)
        return bool(rows) and app.signed_mapper.open(rows[0].state).leaf_hash == leaf_hash

    def on_hold(self, origin: str) -> str | None:
        return hold_reason(self.app, origin)


def parse(raw: bytes) -> Envelope | Outcome:
    """The envelope, or its refusal (parked ``malformed``) when the bytes are none."""
    try:
        return Envelope.from_bytes(raw)
    except (FlagLedgerError, ValueError) as exc:
        return _refused(exc)


def admit(app: FlagLedger, env: Envelope, view: LedgerView) -> tuple[UUID, object] | Outcome:
    """(stream, decoded event) of an envelope that is ours to decide, or its outcome: a schema violation, a
    signature that does not verify, a payload its signer may not write (all parked), or our own event read
    back (``own``, or parked as a forgery). A database failure is raised, never taken for the message's fault."""
    try:
        h = env.header  # (read lazily: a header that is no JSON raises here)
        stream = _check_schema(env)
        app.signed_mapper.verify(env)
        event = app.signed_mapper.decode(env, stream)
        if h.origin in app.hosted:
            # our own event read back from the topic: skipped only if it is the very event our log holds
            # (a forgery naming a hosted agency would otherwise vanish without being parked)
            return _own(env, view)
        bad = payload_violation(h.topic, h.origin, vars(event), stream, h.version)
    except (StorageError, StateConflict):
        raise  # a failed read of our own stream is the database's fault, not the message's: retried
    except (FlagLedgerError, ValueError) as exc:
        return _refused(exc)
    if bad is not None:  # e.g. a new stream opened in another agency's name
        return _foreign(env, bad)
    return stream, event


def decide(
    app: FlagLedger,
    env: Envelope,
    stream: UUID,
    event: object,
    view: LedgerView,
    *,
    can_hold: bool,
    accept_revoked_key: bool = False,
    roster_wait: bool | None = None,
    residence_wait: bool | None = None,
) -> Outcome:
    """The outcome of an admitted event against ``view``: :data:`APPLY`, ``held_gap`` (the caller keeps it in
    the pending table; only when ``can_hold``, else parked ``gap``), ``held_roster`` (a flag change signed by
    staff keys its agency's roster does not hold yet: kept in the pending table until a roster event certifies
    them, only when ``roster_wait`` — ``can_hold`` unless given — else parked), ``held_residence`` (a number
    change by a municipality the moves recorded here say the person does not live in: kept until a move makes
    it their residence, only when ``residence_wait`` — ``can_hold`` unless given — else parked
    ``not_residence``), ``duplicate``, or parked with a code.

    ``accept_revoked_key``: an operator confirmed with the originating agency that this event, signed by a
    key revoked since, is genuine (``consumers replay ID --accept-revoked-key``); see :func:`_revoked_late`.
    """
    h = env.header
    held = view.on_hold(h.origin)
    if held is not None:  # kept (parked), not applied, until an operator lifts the hold and replays it
        return Outcome(
            "parked",
            f"agency {h.origin} is on hold ({held}); after `flagledger audit release {h.origin}` replay this",
            Code.AGENCY_HELD,
        )
    head = view.head(stream, h.version)
    if head is not None and h.version > 1:  # (a stream not here yet: held behind the gap, checked on release)
        bad = append_violation(h.topic, h.origin, view.owner(stream))
        if bad is not None:
            return _foreign(env, bad)
    head_version, head_hash = head if head is not None else (0, GENESIS)
    if h.version <= head_version:
        return _hold_on_checkpoint_fork(app, env, _duplicate_or_fork(env, view))
    if h.version > head_version + 1:
        if not can_hold:
            return Outcome("parked", f"gap: v{head_version + 1} of stream {h.stream} is missing", Code.GAP)
        return Outcome("held_gap", f"waiting for v{head_version + 1} of stream {h.stream}", Code.GAP)
    if h.prev != head_hash:
        forked = Outcome("parked", f"v{h.version} of stream {h.stream} does not chain to v{head_version}", Code.FORK)
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
    if h.topic in LINK_TOPICS:
        wait = can_hold if residence_wait is None else residence_wait
        return _link_conflict(app, env, stream, event, wait) or APPLY
    return _staff_signed(app, env, event, can_hold if roster_wait is None else roster_wait) or APPLY


ROSTER_TOPIC_PREFIX = "ledger.domain.roster:StaffRoster."
EVIDENCE_TOPICS = {"ledger.domain.flags:Protection." + e: e for e in ("FlagsSet", "FlagsRenewed", "FlagsReleased")}


def _staff_signed(app: FlagLedger, env: Envelope, event: object, roster_wait: bool) -> Outcome | None:
    """Park a flag change whose staff evidence does not prove its requester, approvers and operator, each a
    person certified in the agency's roster (:func:`ledger.domain.staff_acts.check_evidence`), and a roster
    event that certifies nothing (a key without its administrator's signature, a second root). An agency
    with no roster here yet is before staff signing: its flag changes carry no evidence and are applied.
    Roster events are decided one at a time (``ingest_many``), so the roster read here is up to date.

    A flag change whose only fault is a key the roster does not hold at all may be ahead of the roster event
    that certifies it (that event parked for a while, or replayed later): with ``roster_wait`` it is held
    (``held_roster``), decided again as the roster grows, and parked if its keys never come
    (:data:`consumers.pending.ROSTER_HOLD`). A fault of any other kind — a bad signature, a revoked key, a
    missing approver — is parked at once. One signed by certified people of whom one did not hold the role
    for their act in the roster there (:func:`ledger.log.staff_roles.check_roles`) is parked ``staff_role``."""
    h = env.header
    kind = EVIDENCE_TOPICS.get(h.topic)
    if kind is None and not h.topic.startswith(ROSTER_TOPIC_PREFIX):
        return None
    roster = app.roster(h.origin)
    payload = vars(event)
    if kind is None:
        state = copy.deepcopy(roster) if roster is not None else RosterState(h.origin)
        problem = state.apply(h.topic.rsplit(".", 1)[1], payload, app.roster)
        if problem is None:
            return None
        why = f"v{h.version} of agency {h.origin}'s staff roster is refused: {problem}"
    else:
        if payload.get("evidence") is None and roster is None:
            return None  # before staff signing (listed as such by `audit verify`)
        problem = check_evidence(roster, kind, payload)
        why = f"v{h.version} of stream {h.stream} ({h.topic}) from agency {h.origin}: {problem}"
        if problem is None:
            # signed by certified people: did each hold the role for their act there? (docs/staff-signing.md)
            problem = check_roles(roster, payload)
            if problem is None:
                return None
            return Outcome("parked", f"v{h.version} of stream {h.stream} ({h.topic}) from agency {h.origin}: "
                           f"{problem}", Code.STAFF_ROLE)  # fmt: skip
        awaited = uncertified_keys(roster, payload) if roster_wait else []
        if awaited and check_evidence(roster, kind, payload, awaited) is None:
            return Outcome(
                "held_roster",
                f"{why}; held until agency {h.origin}'s roster certifies key(s) {', '.join(awaited)}",
                Code.STAFF_SIGNATURE,
            )
    return Outcome("parked", why, Code.STAFF_SIGNATURE)


LINKED, RELINKED = get_topic(PseudonymLink) + ".Linked", get_topic(PseudonymLink) + ".Relinked"
LINK_TOPICS = frozenset({LINKED, RELINKED})  # ingest_many sends these through ingest(): checked against the log
# a move applied may make a held number change's linker the person's residence (ingest_many sends it through
# ingest(), which decides the held ones again)
MOVE_TOPIC = get_topic(ResidenceChange) + ".Recorded"


def _link_conflict(app: FlagLedger, env: Envelope, stream: UUID, event: object, wait: bool) -> Outcome | None:
    """Park a peer's number change that would chain or cycle: a number already in an active link (any
    agency's) is never linked again — the rule the linking agency's own node applies (issue 18). A genuine
    race (the peer unlinked first, its unlink not here yet) is applied by `consumers replay ID` once it is.
    And one linked by another agency than the person's residence municipality (ledger/app/residence.py): a
    prefecture, national agency or body is parked at once; a municipality the moves recorded here rule out is
    held with ``wait`` (``held_residence``) — the move that made it the residence may not be here yet (peers
    receive moves in any order), and applying it before one is would let a stranger's link onto a victim's
    number; parked once :data:`consumers.pending.RESIDENCE_HOLD` is over. A link that names the move it was
    judged by is judged as of that move (ledger/app/residence.py): held while the move is not here, parked at
    once when that move rules it out or its node had signed a later one itself."""
    h = env.header
    state = app.flag_state
    if state is None:  # every node opened through the bootstrap has it; without it nothing can be checked
        return Outcome("parked", f"{h.topic}: no nationwide state to check the link against", Code.LINK_CONFLICT)
    if h.topic == LINKED:
        numbers = (str(getattr(event, "old", "")), str(getattr(event, "new", "")))
    else:
        link = app.find(PseudonymLink, stream)
        numbers = (link.old if link is not None else "", str(getattr(event, "new", "")))
    if numbers[0] == numbers[1]:
        return Outcome(
            "parked", f"v{h.version} of stream {h.stream} ({h.topic}) links a number to itself", Code.LINK_CONFLICT
        )
    for number, which in zip(numbers, ("old", "new"), strict=True):
        if number and state.linked(number) is not None:
            return Outcome(
                "parked",
                f"v{h.version} of stream {h.stream} ({h.topic}) signed by agency {h.origin}: its {which} number is "
                "already linked to another number (chains and cycles are refused); once that link is undone "
                "`flagledger consumers replay ID` applies it",
                Code.LINK_CONFLICT,
            )
    where = f"v{h.version} of stream {h.stream} ({h.topic}) signed by agency {h.origin}"
    why = linker_refusal(app, h.origin)
    if why is not None:
        return Outcome("parked", f"{where}: {why}", Code.NOT_RESIDENCE)
    subjects = [n for n in numbers if n]
    named, before = getattr(event, "residence_move", None), signed_before(app, env)
    if named is None:  # a link from before it named its move: judged by the moves dated up to its own date
        cutover = app.old_links_refused_from
        if cutover is not None:
            if h.timestamp >= cutover:
                return Outcome("parked", f"{where}: {old_format(cutover)}", Code.OLD_LINK_FORMAT)
            # signed before the cut-over, so it cannot postdate a move recorded since: such a move counts
            before = recorded_since(cutover, before)
        verdict = unnamed_move_refusal(app, h.origin, subjects, h.time[:10], before)
    else:
        verdict = named_move_refusal(app, h.origin, subjects, str(named), before)
    if verdict is None:
        return None
    kind, why = verdict
    if wait and kind == "hold":
        until = "the move it names is" if named else f"a recorded move makes agency {h.origin} their residence"
        held = f"{where}: {why}; held until {until} here"
        return Outcome("held_residence", held, Code.NOT_RESIDENCE)
    return Outcome("parked", f"{where}: {why}", Code.NOT_RESIDENCE)


def _refused(exc: Exception) -> Outcome:
    return Outcome("parked", str(exc), getattr(exc, "code", Code.MALFORMED))


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
            raise FlagLedgerError(f"topic {topic!r} is not a flagledger event", code=Code.SCHEMA)
        try:
            resolve_topic(topic)
            local = is_local_only(topic)
        except Exception as exc:  # the library raises TopicError / ValueError / AttributeError
            raise FlagLedgerError(f"unknown event topic {topic!r}", code=Code.SCHEMA) from exc
        if local:
            raise FlagLedgerError(f"{topic} is local-only and must never be published", code=Code.SCHEMA)
        _shared_topics.add(topic)
    stream = UUID(env.header.stream)
    if str(stream) != env.header.stream:
        # UUID() also reads upper case, braces and a "urn:uuid:" prefix, but the log's rows are read back as
        # str(UUID): a stream spelled otherwise would be stored and then fail every audit as a broken chain
        raise FlagLedgerError(f"stream id {env.header.stream!r} is not in canonical form ({stream})", code=Code.SCHEMA)
    return stream


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
    return Outcome("parked", foreign_writer_reason(h.stream, h.version, h.topic, h.origin, why), Code.FOREIGN_WRITER)


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
        Code.REVOKED_KEY_LATE,
    )


def _hold_on_checkpoint_fork(app: FlagLedger, env: Envelope, outcome: Outcome) -> Outcome:
    """A checkpoint that does not extend the last one held from its agency: that agency showed two histories.
    Its stream is held (nothing more from it is applied) until an operator resolves it; see the README."""
    if outcome.kind != "parked" or not is_checkpoint_topic(env.header.topic):
        return outcome
    origin = env.header.origin
    reason = f"checkpoint fork from agency {origin}: {outcome.reason}"
    hold_agency(app, origin, reason, Code.CHECKPOINT_FORK)
    return Outcome("parked", f"{reason}; agency {origin} is now on hold", Code.CHECKPOINT_FORK)


def _own(env: Envelope, view: LedgerView) -> Outcome:
    if _duplicate_or_fork(env, view).kind == "duplicate":
        return Outcome("own")
    h = env.header
    return Outcome(
        "parked",
        f"v{h.version} of stream {h.stream} claims agency {h.origin}, hosted here, "
        "but is not the event this node holds",
        Code.FORGED_OWN,
    )


_DUPLICATE = Outcome("duplicate")


def _duplicate_or_fork(env: Envelope, view: LedgerView) -> Outcome:
    h = env.header
    if view.holds_same(h.stream, h.version, env.leaf_hash):
        return _DUPLICATE
    return Outcome(
        "parked",
        f"v{h.version} of stream {h.stream} differs from the event already held: a fork or rewritten history",
        Code.FORK,
    )
