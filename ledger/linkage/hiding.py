"""Sticky hiding on the portal by the hub's sequence, never by comparing clocks (issue #19).

Every provision record and every ``NON_DISCLOSURE`` set or release that reaches the hub gets the next number of
the hub's one sequence (``ledger.hub.sequencer``). A person's non-disclosure intervals are ``[set, release)`` in
that sequence, one per holding — a holder's flag on one of the person's numbers — across all their numbers. A
record is hidden if its sequence number is below the end of the person's latest interval, an open interval
ending at infinity. So:

* every record made while a flag applies is hidden, and every record made *before* it too (the seed's case 1:
  the perpetrator must not learn, after release, which agencies were asked while the victim was moving);
* a release never unhides: the end only grows (a later interval starts later still);
* only a record sequenced after the last release is shown;
* no provider's clock is read: a provider whose clock runs hours ahead or behind stamps its records with any
  time it likes, and the decision is the same.

The holdings are kept apart on purpose: a holder's release under a person's new number does not close its
holding under the old one (each is its own protection in the ledger); when in doubt, more stays hidden.

Pure functions (no database): the hub's portal view (``ledger.hub.portal_view``) and any later portal role
decide with :func:`hidden` alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ledger.errors import InputError

__all__ = [
    "HIDDEN_NOTE",
    "INFINITY",
    "NON_DISCLOSURE",
    "Action",
    "FlagChange",
    "Interval",
    "end_of_latest",
    "fold",
    "hidden",
]

NON_DISCLOSURE: Final = "NON_DISCLOSURE"
# what the portal may say about records it leaves out: no holder, no agency, no count, no time
HIDDEN_NOTE: Final = "hidden under non-disclosure"
INFINITY: Final = float("inf")

Action = Literal["set", "release"]


@dataclass(frozen=True)
class FlagChange:
    """A flag set or released on one person id by one holder, as the hub sequenced it."""

    seq: int
    person: str
    holder: str
    flag: str
    action: Action


@dataclass(frozen=True)
class Interval:
    """``[start, end)`` in the hub's sequence; ``end`` None while the holding is open (it ends at infinity)."""

    person: str
    holder: str
    start: int
    end: int | None

    @property
    def until(self) -> float:
        return INFINITY if self.end is None else self.end


def fold(changes: Iterable[FlagChange], flag: str = NON_DISCLOSURE) -> list[Interval]:
    """The intervals of ``flag`` from its changes (in any order: they are folded in sequence order).

    One holding per (holder, person id): a set while the holding is open changes nothing (a renewal, or the same
    flag set again), a release closes it, a release with nothing open changes nothing."""
    ordered = sorted((c for c in changes if c.flag == flag), key=lambda c: c.seq)
    if len({c.seq for c in ordered}) != len(ordered):
        raise InputError("two flag changes carry one sequence number: not one hub's sequence", field="seq")
    open_at: dict[tuple[str, str], int] = {}
    closed: list[Interval] = []
    for c in ordered:
        key = (c.holder, c.person)
        if c.action == "set":
            open_at.setdefault(key, c.seq)
        elif c.action == "release":
            if (start := open_at.pop(key, None)) is not None:
                closed.append(Interval(c.person, c.holder, start, c.seq))
        else:
            raise InputError(f"a flag change is a set or a release, not {c.action!r}", field="action")
    still = [Interval(p, h, start, None) for (h, p), start in open_at.items()]
    return sorted([*closed, *still], key=lambda i: (i.start, i.until))


def end_of_latest(intervals: Sequence[Interval]) -> float | None:
    """Where the person's latest interval ends (infinity while one is open); None: never under the flag."""
    return max((i.until for i in intervals), default=None)


def hidden(seq: int, intervals: Sequence[Interval]) -> bool:
    """The one rule: a record is hidden if its sequence is below the end of the person's latest interval."""
    end = end_of_latest(intervals)
    return end is not None and seq < end
