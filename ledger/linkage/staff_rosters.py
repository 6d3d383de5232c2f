"""An agency's staff roster sent to the hub, so that the hub checks the four eyes of a staff decision
(the consultation beyond delivery, ``ledger.linkage.consultation.check_decision``) against keys the agency's own
roster certified — not against a list the hub's operator typed in.

Design: the agency sends the **events of its roster stream** (``ledger.domain.roster.StaffRoster``: ``Opened``,
``KeyCertified``, ``SecurityKeyCertified``, ``KeyRevoked``, ``RoleCertified``, ``RolesWithdrawn``), in its log
order, as the kind ``staff_roster`` (agency → hub) inside the seal, so the agency's signing key vouches that they
are its stream. The hub keeps them append-only (``hub_rosters``) and folds them with the one rule every reader
of a roster applies (:class:`ledger.log.staff_roster.RosterState`): each certificate after the root carries the issuing
administrator's signature and the new key's proof of possession, so the agency's node key alone — a shell
user at the agency, or a peer who stole it — adds no staff key past the root, and an invalid event certifies
nothing (kept, as in the ledger, and ignored). The root is the agency's first event: a second root, or a
stream that differs from what the hub kept, is refused whole (``conflict``).

``position`` is the index of the first event in the agency's stream: a sender may send the whole stream every
time (what the hub already holds must match) or only what is new.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.errors import Code, InputError
from ledger.linkage.messages import Message
from ledger.log.staff_roster import RosterState

__all__ = ["MAX_EVENTS", "ROSTER_FIELDS", "RosterEvent", "StaffRosterMessage", "fold", "roster_events"]

# what RosterState.apply reads of each kind; nothing else of a stored event (ids, times) travels
ROSTER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Opened": ("root",),
    "KeyCertified": ("cert",),
    "SecurityKeyCertified": ("security_key",),
    "KeyRevoked": ("staff", "key_id"),
    # the roles a peer checks (docs/staff-signing.md, "Roles at peers"): kept and folded alike at the hub
    "RoleCertified": ("certified",),
    "RolesWithdrawn": ("staff", "roles"),
}
MAX_EVENTS = 200  # per message: a roster of ~1 KB events stays well inside the largest bucket
_MAX_TEXT = 240_000
_MAX_VALUE = 4_000  # one certificate field (a COSE key, a signature) is far smaller

RosterEvent = tuple[str, dict[str, Any]]


def _checked_value(value: Any, depth: int = 0) -> None:
    if depth > 3:  # a role certification's signatures sit one level below a certificate's fields
        raise InputError("a roster event nests too deep", code=Code.MALFORMED, field="events")
    if isinstance(value, list):  # a list of roles
        if len(value) > 8 or not all(isinstance(v, str) and len(v) <= 64 for v in value):
            raise InputError("a roster event's lists are a few short names", code=Code.MALFORMED, field="events")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or len(k) > 64:
                raise InputError("a roster event's field names are short text", code=Code.MALFORMED, field="events")
            _checked_value(v, depth + 1)
    elif isinstance(value, str):
        if len(value) > _MAX_VALUE:
            raise InputError("a roster event's field is too long", code=Code.MALFORMED, field="events")
    elif value is not None and not isinstance(value, bool):
        raise InputError("a roster event holds text, true/false and null only", code=Code.MALFORMED, field="events")


def _event(raw: Any) -> RosterEvent:
    if not isinstance(raw, list) or len(raw) != 2 or raw[0] not in ROSTER_FIELDS or not isinstance(raw[1], dict):
        raise InputError(f"a roster event is [kind, fields], kind one of {sorted(ROSTER_FIELDS)}", code=Code.MALFORMED)
    kind, payload = str(raw[0]), raw[1]
    if set(payload) != set(ROSTER_FIELDS[kind]):
        raise InputError(f"a {kind} roster event holds exactly {list(ROSTER_FIELDS[kind])}", code=Code.MALFORMED)
    _checked_value(payload)
    return kind, payload


def roster_events(stream: Iterable[tuple[str, Mapping[str, Any]]]) -> list[RosterEvent]:
    """The agency's roster stream (kind, the event's fields, e.g. ``type(e).__name__, vars(e)``) as it travels:
    each event reduced to the fields the roster rule reads."""
    return [_event([kind, {f: fields[f] for f in ROSTER_FIELDS.get(kind, ())}]) for kind, fields in stream]


def fold(
    agency: str, events: Sequence[RosterEvent], peers: Callable[[str], RosterState | None] | None = None
) -> RosterState:
    """The roster those events make, by the ledger's one rule (an invalid event certifies nothing); ``peers``:
    the other agencies' rosters, for a role a prefecture co-approved (break-glass)."""
    state = RosterState(agency)
    for kind, payload in events:
        state.apply(kind, payload, peers)
    return state


@dataclass(frozen=True)
class StaffRosterMessage(Message):
    kind: ClassVar[str] = "staff_roster"
    position: int  # the index of the first event in the sender's roster stream
    events: str  # JSON: [[kind, fields], …] (roster_events)

    @classmethod
    def of(cls, position: int, events: Sequence[RosterEvent]) -> StaffRosterMessage:
        return cls(position, json.dumps([list(e) for e in events], ensure_ascii=False, separators=(",", ":")))

    def decoded(self) -> list[RosterEvent]:
        if len(self.events) > _MAX_TEXT:
            raise InputError("a staff_roster message is too long", code=Code.OVERSIZE, field="events")
        try:
            raw = json.loads(self.events)
        except (ValueError, RecursionError):
            raise InputError("a staff_roster's events are not JSON", code=Code.MALFORMED, field="events") from None
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_EVENTS:
            raise InputError(f"a staff_roster carries 1 to {MAX_EVENTS} events", code=Code.MALFORMED, field="events")
        return [_event(e) for e in raw]

    def check(self) -> None:
        if not isinstance(self.position, int) or isinstance(self.position, bool) or not 0 <= self.position < 10**9:
            raise InputError("a staff_roster's position is a whole number", code=Code.MALFORMED, field="position")
        self.decoded()
