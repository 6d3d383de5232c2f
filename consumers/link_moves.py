"""Which moves a linking node had itself signed before its link, told by its own log order, not by a clock.

A number change names the move it was judged by (ledger/app/residence.py); a node that names an older move than
one it had recorded itself is backdating. Both events carry their signer's log position in the seal (the size of
its log before the batch, then the place in the batch), which the signer cannot move once its peers hold either:
so "signed before the link" is decided alike at every peer, whatever either event's signed time says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ledger.app import FlagLedger
from ledger.domain.moves import ResidenceChange
from ledger.log.envelope import Envelope

__all__ = ["old_format", "recorded_since", "signed_before"]


def signed_before(app: FlagLedger, link: Envelope) -> Callable[[ResidenceChange], bool]:
    """``move`` → whether ``link``'s signer signed ``move`` (as stored here) before ``link`` in its own log."""
    origin, at = link.header.origin, (link.seal.log_size, link.seal.leaf_index)

    def before(move: ResidenceChange) -> bool:
        rows = app.recorder.select_events(move.id, limit=1)
        if not rows:
            return False
        env = app.signed_mapper.open(rows[0].state)
        return env.header.origin == origin and (env.seal.log_size, env.seal.leaf_index) < at

    return before


def recorded_since(cutover: datetime, before: Callable[[ResidenceChange], bool]) -> Callable[[ResidenceChange], bool]:
    """``before``, and every move recorded (its signed time, by the node that recorded it) at or after
    ``cutover``: counted against an old-format link signed before the cut-over whatever the move's date."""
    return lambda move: move.created_on >= cutover or before(move)


def old_format(cutover: datetime) -> str:
    """Why an old-format link signed at or after ``cutover`` is parked, for the operator."""
    return (
        f"it is in the old format (names no residence move) and signed at or after the cut-over "
        f"{cutover.isoformat()} (linkage.number_links.old_format_refused_from): its node runs a release from "
        "before links named their move (upgrade it, then `flagledger consumers replay ID`), or stripped the move "
        "to backdate the link past a move recorded elsewhere"
    )
