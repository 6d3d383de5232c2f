"""Which guardians or proxies are barred from acting for which person, folded from verified ``GuardianBar`` events
(issue 21, :mod:`ledger.domain.guardians`) for :class:`projections.verified.VerifiedState`.

A bar is in force from its approval to its lifting, on the owner's word (writer authority keeps both on its
stream). Bars are counted per pair, so two agencies' bars on one pair stand until both are lifted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["GuardianBars"]


class GuardianBars:
    def __init__(self) -> None:
        self._pairs: dict[str, tuple[str, str]] = {}  # bar stream → (subject, guardian)
        self._barred: dict[str, dict[str, int]] = {}  # subject → guardian → bars in force

    def apply(self, stream: str, kind: str, event: Any) -> None:
        """Fold one verified event of a bar's stream (``kind``: Proposed, Approved, LiftProposed, Lifted)."""
        if kind == "Proposed":
            self._pairs[stream] = (str(event.subject), str(event.guardian))
            return
        pair = self._pairs.get(stream)
        if pair is None or kind not in ("Approved", "Lifted"):
            return
        subject, guardian = pair
        bars = self._barred.setdefault(subject, {})
        bars[guardian] = bars.get(guardian, 0) + (1 if kind == "Approved" else -1)
        if bars[guardian] <= 0:
            del bars[guardian]
        if not bars:
            del self._barred[subject]

    def any_barred(self, subjects: Iterable[str], guardians: set[str]) -> bool:
        """Whether any of ``guardians`` (one person's numbers) is barred for any of ``subjects`` (another's)."""
        return any(guardians.intersection(self._barred.get(p, ())) for p in subjects)

    def __len__(self) -> int:
        return len(self._barred)
