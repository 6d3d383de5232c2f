"""The one non-disclosure filter over a person's provision records, for every channel that hands them to the
person: the portal's display (情報提供等記録表示), the agency's answer to a disclosure request (開示請求) and the
counter's printout (issue 21, "Other channels"; docs/channels.md).

A record is withheld when it was made before the end of the person's latest ``NON_DISCLOSURE`` period (any
holder, any of their numbers; an open period ends never: :attr:`projections.verified.Person.nd_cutoff`). That
is the seed's case 1: C queried A about the perpetrator Q while Q was flagged; the record names C as querier,
and C is where the victim lives now. A channel that applied its own rule would reopen the leak the portal
closes, so each of them calls :func:`filtered` and nothing else decides.

What the channel may say about what it left out: nothing (no holder, no agency, no time). The count is
returned only so that the handling agency can *record* it (``DisclosureRecord``), never to be shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from projections.portal import OPEN_END
from projections.record_check import RecordFacts
from projections.verified import Person

__all__ = ["Candidates", "Filtered", "Scope", "filtered"]

Shown = tuple[RecordFacts, str]  # (the signed facts, the outcome row's status)
Candidates = Callable[[Person, str], list[Shown]]  # (person, cutoff) → their records made at or after it, in order
Scope = Callable[[RecordFacts], bool]  # which records the channel covers at all (e.g. one agency's own)


@dataclass(frozen=True)
class Filtered:
    shown: tuple[Shown, ...]
    withheld: int | None  # how many records in scope the filter left out; None: not counted (the portal's view)


def filtered(candidates: Candidates, person: Person, scope: Scope | None = None, *, count: bool = False) -> Filtered:
    """The person's records in ``scope`` that may be shown, in display order, and (``count``) how many were not.

    Without ``count`` the records before the cutoff are never read (the portal's fast path: a person protected
    now costs no record read at all). With it every record in scope is read once and split on its signed time.
    """
    cutoff = person.nd_cutoff
    if not count:
        if cutoff == OPEN_END:
            return Filtered((), None)
        return Filtered(tuple(r for r in candidates(person, cutoff) if scope is None or scope(r[0])), None)
    shown: list[Shown] = []
    withheld = 0
    for record in candidates(person, ""):
        if scope is not None and not scope(record[0]):
            continue
        if record[0].created_at < cutoff:
            withheld += 1
        else:
            shown.append(record)
    return Filtered(tuple(shown), withheld)
