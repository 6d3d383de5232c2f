"""Handovers at the hub (issue 19, docs/linkage.md): a protected person's move reported by a municipality, the
new municipality asked to take over under its own code, the reporter told when it has.

The rule per hop (the hub takes a move only from the agency entitled to report it):

* the sender is a municipality by its directory entry (the kind the hub's administrator accepted at import:
  ``ledger.linkage.directory``) — a support centre, the police or a party of no known kind is refused
  (``wrong_agency``) before anything about the person is read;
* the sender is one of the two municipalities of the move (転出 entered at the old one, 転入 at the new one);
* it protects the person now (a flag of its own applies, under any of their numbers), or it is where the hub
  last saw them move to — a peer that neither holds nor is the residence cannot make the hub hand a victim's
  protection to itself, nor learn by trying whether anyone protects them (refused alike, ``wrong_agency``);
* a move *from* somewhere must start where the hub last saw the person move to (``not_residence``).

A move refused as ``not_residence`` is reported back to its sender (``move_refused``: its move id and code, no
holder, not where the person lives), so its staff do not believe a handover is under way while nobody is asked.

A number link (番号の変更, ``may_link``) is a municipality's act too: one from any other kind (or none) is refused
``wrong_agency`` before the person is looked at, then only the residence links (``not_residence``).

The new municipality is sent a ``handover`` (its code, the day, the flags that apply and it does not hold; no
holder, no old municipality) as soon as it has registered the person — at once, or when it files them. When it
sets one of those flags, the move's sender is sent ``handed_over`` (the flags the new municipality now holds),
so the old holder may release without a decision naming the risk — and the sender of each earlier move the person
moved on from before it was taken over is sent ``handed_on`` (the flags, no municipality named), so it too may
release, as in shared mode where the latest move counts. Only the latest move of a person counts:
when the person moves on from a municipality that was sent a handover (before it took over, or after), that
municipality is sent ``handover_withdrawn`` under its own code, so no municipality that is no longer where they
live keeps a live request about them (the move that withdraws it passed the rule above: a peer cannot).

A ``last_holder`` (a holder's node saw that a release asked of it would leave flags with no holder; its view is
its own flags only) is taken only from a holder of one of those flags, and only the flags it holds count; each
other holder of the person is sent ``last_holder_warning`` under its own code with the flags no one else holds —
not who releases, not who else holds — and nothing at all when someone else holds each (no protection ends).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.domain.types import AgencyKind
from ledger.errors import Code, NotFoundError, PermissionDenied
from ledger.hub import txn
from ledger.hub.tables import hub_flag_changes, hub_moves
from ledger.linkage.codes import CodeMap, codes_of, persons_of
from ledger.linkage.hiding import FlagChange, fold
from ledger.linkage.messages import FLAGS, Message, decode
from ledger.linkage.moves import (
    HandedOn,
    HandedOver,
    HandoverMessage,
    HandoverWithdrawn,
    LastHolderMessage,
    LastHolderWarned,
    MoveMessage,
    MoveRefused,
    join_flags,
    split_flags,
)
from ledger.storage import storage_error

__all__ = ["HubMoves", "KindOf", "Write", "applying"]

# built once: asked at every registration (the handover a new municipality may be owed)
_HISTORY = (
    select(
        hub_moves.c.seq,
        hub_moves.c.sender,
        hub_moves.c.move_id,
        hub_moves.c.sender_code,
        hub_moves.c.to_agency,
        hub_moves.c.moved_on,
        hub_moves.c.flags,
        hub_moves.c.delivered,
        hub_moves.c.taken,
    )
    .where(hub_moves.c.person.in_(bindparam("persons", expanding=True)))
    .order_by(hub_moves.c.seq.desc())
)
_LATEST = _HISTORY.limit(1)

Seal = Callable[[str, Message], tuple[str, bytes]]
Write = Callable[[Connection, int], None]
KindOf = Callable[[str], AgencyKind | None]  # a party's kind, as the hub's directory holds it
_WARNINGS = uuid.UUID("3d1f6c2e-9a47-4b8e-8f15-7c2a0d9e4b61")  # the namespace of the hub's warning ids


def applying(engine: Engine, persons: list[str]) -> dict[str, set[str]]:
    """Holder → the flags of its that apply now on the person (``persons``: the ids of all their numbers)."""
    f = hub_flag_changes.c
    stmt = select(f.seq, f.person, f.holder, f.flag, f.action).where(f.person.in_(persons)).order_by(f.seq)
    try:
        with txn.reading(engine) as conn:
            changes = [FlagChange(int(s), str(p), str(h), str(fl), a) for s, p, h, fl, a in conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's flag changes", exc) from exc
    held: dict[str, set[str]] = {}
    for flag in FLAGS:
        for interval in fold(changes, flag):
            if interval.end is None:
                held.setdefault(interval.holder, set()).add(flag)
    return held


@dataclass(frozen=True)
class _Move:
    seq: int
    sender: str
    move_id: str
    sender_code: str
    to_agency: str
    moved_on: str
    flags: str
    delivered: bool
    taken: str


class HubMoves:
    def __init__(self, engine: Engine, codes: CodeMap, seal: Seal, kind_of: KindOf) -> None:
        self.engine, self.codes, self.seal, self.kind_of = engine, codes, seal, kind_of

    def _latest(self, persons: list[str]) -> _Move | None:
        try:
            with txn.reading(self.engine) as conn:
                row = conn.execute(_LATEST, {"persons": persons}).first()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's moves", exc) from exc
        return None if row is None else _Move(*row)

    def _known(self, sender: str, move_id: str) -> bool:
        m = hub_moves.c
        try:
            with txn.reading(self.engine) as conn:
                found = conn.execute(select(m.seq).where(m.sender == sender, m.move_id == move_id)).first()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's moves", exc) from exc
        return found is not None

    def municipality(self, sender: str, what: str) -> None:
        """Refuse ``what`` from ``sender`` (``wrong_agency``) unless the hub's directory holds it as a municipality
        (the kind its administrator accepted at import) — checked before anything about the person is read."""
        if self.kind_of(sender) is not AgencyKind.MUNICIPALITY:
            raise PermissionDenied(
                f"{what} is a municipality's; the hub's directory names {sender} {self.kind_of(sender) or 'no kind'}",
                code=Code.WRONG_AGENCY,
            )

    def may_link(self, sender: str, persons: list[str]) -> None:
        """Refuse ``sender``'s number link (番号の変更) unless it is the person's residence by the hub's own order:
        the latest move of either number the hub filed before the link (its sequence, no clock) went to it, or
        none was filed. A former residence linking while the move away, recorded only at the new municipality
        (転入), is "in flight" to it is refused here: the hub filed that move first (docs/operations.md, "Number
        changes"). The refusal names no municipality: not where the person went, nor who reported it."""
        latest = self._latest(persons)
        if latest is not None and latest.to_agency != sender:
            raise PermissionDenied(
                "only the person's residence municipality links their numbers: by the moves the hub filed, "
                "they no longer live there",
                code=Code.NOT_RESIDENCE,
            )

    def take(self, sender: str, kind: str, payload: bytes) -> tuple[list[tuple[str, bytes]], Write | None]:
        """A ``move`` or a ``last_holder`` from ``sender``: what it owes and writes."""
        m: MoveMessage | LastHolderMessage = (
            decode(MoveMessage, payload) if kind == MoveMessage.kind else decode(LastHolderMessage, payload)
        )
        person = self.codes.person(sender, m.code)
        if person is None:
            raise NotFoundError(f"{sender} has registered no person under this code at the hub")
        return (
            self.move(sender, person, m) if isinstance(m, MoveMessage) else (self.last_holder(sender, person, m), None)
        )

    def move(self, sender: str, person: str, m: MoveMessage) -> tuple[list[tuple[str, bytes]], Write | None]:
        """File ``sender``'s report that the person (its code in ``m``, the hub's ``person``) moved; what it owes
        and writes. Refused (nothing filed) unless the sender is entitled to report it."""
        self.municipality(sender, "a move")
        if sender not in (m.from_agency, m.to_agency):
            raise PermissionDenied(
                "a move is reported by the municipality moved from or the one moved to", code=Code.WRONG_AGENCY
            )
        if self._known(sender, m.move_id):
            return [], None  # the same move sent again under a fresh message id: filed once
        persons = persons_of(self.codes, person)
        held = applying(self.engine, persons)
        latest = self._latest(persons)
        residence = latest.to_agency if latest is not None else None
        if sender not in held and sender != residence:
            # one refusal whether or not anyone protects the person: trying tells a peer nothing
            raise PermissionDenied(
                "only a municipality that protects the person, or where they live, reports their move",
                code=Code.WRONG_AGENCY,
            )
        if residence is not None and m.from_agency and m.from_agency != residence:
            raise PermissionDenied("a move starts where the person last moved to", code=Code.NOT_RESIDENCE)
        wanted = {f for flags in held.values() for f in flags} - held.get(m.to_agency, set())
        flags = join_flags(wanted)
        owes: list[tuple[str, bytes]] = []
        to_codes = codes_of(self.codes, m.to_agency, person)
        if flags and to_codes:
            owes.append(self.seal(m.to_agency, HandoverMessage(uuid.uuid4().hex, to_codes[-1], m.moved_on, flags)))
        delivered = bool(owes) or not flags  # (before the withdrawal joins what is owed)
        owes += self._withdrawn(latest, m.to_agency, person)
        row = {
            "sender": sender,
            "move_id": m.move_id,
            "sender_code": m.code,
            "person": person,
            "from_agency": m.from_agency,
            "to_agency": m.to_agency,
            "moved_on": m.moved_on,
            "flags": flags,
            "delivered": delivered,
            "taken": "",
        }
        return owes, lambda conn, seq: _exec(conn, insert(hub_moves).values(seq=seq, **row))

    def refused(self, sender: str, payload: bytes, reason: str) -> list[tuple[str, bytes]]:
        """What the sender of a move refused as ``not_residence`` is owed: the refusal under its own move id and
        code, so its staff do not believe a handover under way. Only for that refusal — the sender passed the rule
        above (a holder, or where the person lives); a ``wrong_agency`` is told nothing (a peer learns nothing)."""
        m = decode(MoveMessage, payload)
        return [self.seal(sender, MoveRefused(m.move_id, m.code, reason))]

    def _withdrawn(self, latest: _Move | None, to_agency: str, person: str) -> list[tuple[str, bytes]]:
        """The withdrawal owed to the municipality the person last moved to, if it was sent a handover and they
        now move elsewhere (a request never delivered is never sent: only the latest move is delivered)."""
        if latest is None or not latest.flags or not latest.delivered or latest.to_agency == to_agency:
            return []
        # under each of its codes for them: the request went under the one it had then
        codes = codes_of(self.codes, latest.to_agency, person)
        return [self.seal(latest.to_agency, HandoverWithdrawn(c)) for c in codes]

    def last_holder(self, sender: str, person: str, m: LastHolderMessage) -> list[tuple[str, bytes]]:
        """The warnings owed to the person's other holders when ``sender``'s release of ``m.flags`` would leave
        some with no holder (none when another holder holds each). Refused unless ``sender`` holds one of them;
        only those it holds count."""
        held = applying(self.engine, persons_of(self.codes, person))
        # only what the sender holds can end with its release (a release request may name a flag it does not hold)
        flags = set(split_flags(m.flags)) & held.get(sender, set())
        if not flags:
            # a peer cannot make the hub tell the holders anything, nor learn by trying who holds
            raise PermissionDenied("a last-holder warning comes from a holder of its flags", code=Code.WRONG_AGENCY)
        others = {h: fl for h, fl in held.items() if h != sender}
        lost = join_flags(flags - {f for fl in others.values() for f in fl})
        owes: list[tuple[str, bytes]] = []
        for holder in sorted(others) if lost else ():
            # under each of its codes (its flags may stand under any of the person's numbers); the same id for a
            # resend of the same warning, so the holder's node keeps it once
            for code in codes_of(self.codes, holder, person):
                wid = uuid.uuid5(_WARNINGS, f"{sender}:{m.warning_id}:{holder}:{code}").hex
                owes.append(self.seal(holder, LastHolderWarned(wid, code, lost)))
        return owes

    def registered(self, holder: str, code: str, person: str) -> tuple[list[tuple[str, bytes]], Write | None]:
        """A new registration: the handover the registering municipality was owed for the person, if any."""
        latest = self._latest(persons_of(self.codes, person))
        if latest is None or latest.to_agency != holder or latest.delivered or not latest.flags:
            return [], None
        owes = [self.seal(holder, HandoverMessage(uuid.uuid4().hex, code, latest.moved_on, latest.flags))]
        stmt = update(hub_moves).where(hub_moves.c.seq == latest.seq).values(delivered=True)
        return owes, lambda conn, seq: _exec(conn, stmt)

    def _history(self, persons: list[str]) -> list[_Move]:
        try:
            with txn.reading(self.engine) as conn:
                return [_Move(*row) for row in conn.execute(_HISTORY, {"persons": persons})]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's moves", exc) from exc

    def flag_set(self, holder: str, person: str, flag: str) -> tuple[list[tuple[str, bytes]], Write | None]:
        """``holder`` set ``flag``: if it is the new municipality taking it over, the move's sender is told, and
        so is the sender of each earlier move the person moved on from before it was taken over."""
        history = self._history(persons_of(self.codes, person))
        latest = history[0] if history else None
        if latest is None or latest.to_agency != holder or latest.sender == holder or not latest.flags:
            return [], None
        asked, taken = split_flags(latest.flags), _taken(latest)
        if flag not in asked or flag in taken:
            return [], None
        now = join_flags(taken | {flag})
        owes = [self.seal(latest.sender, HandedOver(latest.move_id, latest.sender_code, holder, now))]
        stmts = [update(hub_moves).where(hub_moves.c.seq == latest.seq).values(taken=now)]
        for earlier in history[1:]:
            # superseded before this flag was taken over: its sender still waits (no municipality named to it)
            if not earlier.flags or flag not in split_flags(earlier.flags) or flag in _taken(earlier):
                break
            onward = join_flags(_taken(earlier) | {flag})
            if earlier.sender != holder:
                owes.append(self.seal(earlier.sender, HandedOn(earlier.move_id, earlier.sender_code, onward)))
            stmts.append(update(hub_moves).where(hub_moves.c.seq == earlier.seq).values(taken=onward))

        def write(conn: Connection, seq: int) -> None:
            for stmt in stmts:
                _exec(conn, stmt)

        return owes, write


def _taken(move: _Move) -> set[str]:
    return set(move.taken.split(",")) - {""}


def _exec(conn: Connection, stmt: object) -> None:
    conn.execute(stmt)  # type: ignore[call-overload]
