"""Who may link a person's numbers (issue 21): only their residence municipality, now that residence is known.

A number change (個人番号の変更) is made by the municipality where the person lives (番号法 第7条第2項): a link
entered anywhere else is how a stranger's number gets onto a victim's (the stranger then reads the victim's
portal as "self"). The ledger knows a residence only from recorded moves (ledger/domain/moves.py, recorded for
protected people): the latest move of either number, on or before the link, names the one municipality that may
link; with no move recorded, any municipality may (the ledger does not know where the person lives), never a
prefecture, a national agency or a protection body. The linking agency's own node refuses (`not_residence`),
and every peer parks such a link at ingest (consumers/decide.py), so a node that skipped the check convinces
nobody.

Since a link names the move it was judged by (``residence_move``, signed: :func:`named_move`), a peer judges it
as of that move (:func:`named_move_refusal`), never by the link's own date, which its signer's clock sets: it
waits for a named move it has not got, a later move does not undo a link made before it, and a link naming an
older move than one its own node had recorded is refused (docs/operations.md, "Number changes").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal
from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.domain.agencies import Agency
from ledger.domain.moves import ResidenceChange
from ledger.domain.types import AgencyKind

__all__ = [
    "Verdict",
    "latest_move",
    "link_refusal",
    "linker_refusal",
    "moves_of",
    "named_move",
    "named_move_refusal",
    "residence",
    "residence_refusal",
    "unnamed_move_refusal",
]

Verdict = tuple[Literal["hold", "park"], str]


def moves_of(app: LedgerAccess, subjects: Iterable[str]) -> list[ResidenceChange]:
    """Every recorded move of any of ``subjects``."""
    wanted = set(subjects)
    # a decision (the link refusal, at every peer's ingest too): the verified log, the moves listed by the year
    # index (ledger.app.year_index) — never the views' year rows, which an insider with the views database edits
    return [m for m in app._year_aggregates(ResidenceChange, "Recorded") if m.subject in wanted]


def latest_move(app: LedgerAccess, subjects: Iterable[str], on: str | None = None) -> ResidenceChange | None:
    """The latest recorded move of any of ``subjects`` (of those dated on or before ``on``, an ISO date, when
    given); None when none is recorded."""
    moves = [m for m in moves_of(app, subjects) if on is None or m.moved_on <= on]
    return max(moves, key=_order, default=None)


def residence(app: LedgerAccess, subjects: Iterable[str], on: str | None = None) -> str | None:
    """The municipality the latest recorded move of any of ``subjects`` went to (moves dated on or before
    ``on``, an ISO date, when given); None when no move is recorded."""
    latest = latest_move(app, subjects, on)
    return latest.to_agency if latest is not None else None


def named_move(app: LedgerAccess, subjects: Iterable[str]) -> str:
    """What a new link names as the move it was judged by: the latest move of ``subjects`` known here, "" for
    none."""
    latest = latest_move(app, subjects)
    return str(latest.id) if latest is not None else ""


def unnamed_move_refusal(
    app: LedgerAccess, agency: str, subjects: Iterable[str], on: str, recorded_before: Callable[[ResidenceChange], bool]
) -> Verdict | None:
    """A peer's judgement of a link from before links named their move (``residence_move`` None), signed on
    ``on`` (an ISO date): by the moves dated on or before it, as then — and by every move the linker's own node
    had signed before it, whatever their dates (``recorded_before``, as for :func:`named_move_refusal`), so a
    link stripped of its named move and backdated does not get past a move its own node recorded. Held, never
    parked at once: a move dated before it may only be late."""
    moves = [m for m in moves_of(app, subjects) if m.moved_on <= on or recorded_before(m)]
    latest = max(moves, key=_order, default=None)
    if latest is None or latest.to_agency == agency:
        return None
    return "hold", _not_residence(agency)


def named_move_refusal(
    app: LedgerAccess,
    agency: str,
    subjects: Iterable[str],
    named: str,
    recorded_before: Callable[[ResidenceChange], bool],
) -> Verdict | None:
    """A peer's judgement of ``agency``'s link of ``subjects`` naming the move ``named`` ("": none):
    ``("hold", why)`` while that move is not here (it may only be late), ``("park", why)`` when it rules the
    link out whatever arrives later, None when the link stands. ``recorded_before(move)``: ``agency``'s own
    node signed ``move`` before the link (by its own log order, no clock: consumers/decide.py), so it knew it.

    Judged as of the named move: the residence is where that move went, and a later move does not undo a link
    made before it. What the linker cannot hide is a later move it recorded itself; naming none while it had
    recorded one, or naming an older one, is refused. Naming none is judged as of the latest move to the linker
    known here (its node may not have received it), or, with none, by every move known here (held)."""
    subjects = list(subjects)
    moves = moves_of(app, subjects)
    if named == "":
        if any(recorded_before(m) for m in moves):
            return "park", "it names no move of the person although its own node had recorded one"
        if any(m.to_agency == agency for m in moves):
            # as if it named the move to it: its node had not received that move (recorded elsewhere), and
            # moves after it (two the same day) do not undo the link — no more than naming it would
            return None
        why = residence_refusal(app, agency, subjects)
        return None if why is None else ("hold", why)
    try:
        move_id = UUID(named)
    except ValueError:
        return "park", "the move it names is no move id"
    move = app.find(ResidenceChange, move_id)
    if move is None:
        return "hold", f"it names move {move_id}, not recorded here yet"
    if move.subject not in subjects:
        return "park", f"the move it names ({move_id}) is not a move of the numbers it links"
    if move.to_agency != agency:
        return "park", (
            f"as of the move it names ({move_id}) the person's residence is another municipality: only it links "
            f"their numbers (agency {agency} is not it)"
        )
    if any(_order(m) > _order(move) and recorded_before(m) for m in moves):
        return "park", (
            f"it names move {move_id} although its own node had recorded a later move of the person (a backdated link)"
        )
    return None


def _order(move: ResidenceChange) -> tuple[str, str, str]:
    # two moves dated the same day are told apart by when each was recorded (the signed event's own time), then
    # by id — never by where each sits in this node's log: peers receive events in different orders, and a
    # tie decided by log order made the linking node and a peer disagree on the residence (a valid link parked)
    return (move.moved_on, move.created_on.isoformat(), str(move.id))


def link_refusal(app: LedgerAccess, agency: str, subjects: Iterable[str], on: str | None = None) -> str | None:
    """Why ``agency`` may not link the numbers ``subjects`` (None: it may)."""
    return linker_refusal(app, agency) or residence_refusal(app, agency, subjects, on)


def linker_refusal(app: LedgerAccess, agency: str) -> str | None:
    """Why ``agency`` never links numbers, wherever the person lives (None: it is no agency of another kind)."""
    known = app.find(Agency, Agency.create_id(code=agency))
    if known is not None and known.kind != AgencyKind.MUNICIPALITY.value:
        return f"agency {agency} is a {known.kind}: only the person's residence municipality links numbers"
    return None


def residence_refusal(app: LedgerAccess, agency: str, subjects: Iterable[str], on: str | None = None) -> str | None:
    """Why the recorded residence of ``subjects`` rules ``agency`` out (None: it does not). A peer deciding at
    ingest may not have received the latest move yet, so only this part of :func:`link_refusal` may change as
    moves arrive (consumers/decide.py holds such a link for a while rather than parking it at once)."""
    lives_in = residence(app, subjects, on)
    return _not_residence(agency) if lives_in is not None and lives_in != agency else None


def _not_residence(agency: str) -> str:
    return (
        f"the person's recorded residence is another municipality: only it links their numbers "
        f"(agency {agency} is not it)"
    )
