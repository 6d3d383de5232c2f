"""Who may link a person's numbers (issue 21): only their residence municipality, now that residence is known.

A number change (個人番号の変更) is made by the municipality where the person lives (番号法 第7条第2項): a link
entered anywhere else is how a stranger's number gets onto a victim's (the stranger then reads the victim's
portal as "self"). The ledger knows a residence only from recorded moves (ledger/domain/moves.py, recorded for
protected people): the latest move of either number, on or before the link, names the one municipality that may
link; with no move recorded, any municipality may (the ledger does not know where the person lives), never a
prefecture, a national agency or a protection body. The linking agency's own node refuses (`not_residence`),
and every peer parks such a link at ingest (consumers/decide.py), so a node that skipped the check convinces
nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.app.access import LedgerAccess
from ledger.domain.agencies import Agency
from ledger.domain.moves import ResidenceChange
from ledger.domain.types import AgencyKind

__all__ = ["link_refusal", "linker_refusal", "residence", "residence_refusal"]


def residence(app: LedgerAccess, subjects: Iterable[str], on: str | None = None) -> str | None:
    """The municipality the latest recorded move of any of ``subjects`` went to (moves dated on or before
    ``on``, an ISO date, when given); None when no move is recorded."""
    wanted = set(subjects)
    latest: ResidenceChange | None = None
    # a decision (the link refusal, at every peer's ingest too): the verified log, the moves listed by the year
    # index (ledger.app.year_index) — never the views' year rows, which an insider with the views database edits
    for move in app._year_aggregates(ResidenceChange, "Recorded"):
        if move.subject not in wanted or (on is not None and move.moved_on > on):
            continue
        if latest is None or _order(move) > _order(latest):
            latest = move
    return latest.to_agency if latest is not None else None


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
    if lives_in is not None and lives_in != agency:
        return (
            f"the person's recorded residence is another municipality: only it links their numbers "
            f"(agency {agency} is not it)"
        )
    return None
