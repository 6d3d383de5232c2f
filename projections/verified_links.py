"""Which pseudonyms name one person in the verified state: number changes, their undoing, retired numbers.

Part of :class:`projections.verified.VerifiedState` (kept apart for size): it folds ``PseudonymLink`` events
read from the verified log, as :mod:`projections.flag_links` folds them into the views. What protection an
unlink keeps is the state's business (it holds the flags); this groups numbers and answers who is linked.
"""

from __future__ import annotations

__all__ = ["NumberLinks"]

Pair = tuple[str, str]


class NumberLinks:
    """Active links, the persons they make, and the numbers retired by them (not thread-safe: the state's
    lock covers it)."""

    def __init__(self) -> None:
        self.person: dict[str, str] = {}  # pseudonym → person (only pseudonyms joined by a number change)
        self.members: dict[str, set[str]] = {}  # person → its pseudonyms (idem)
        self._links: dict[str, Pair] = {}  # link stream → (old, new), active links only
        self._old: dict[str, str] = {}  # link stream → its old number (every link seen: Relinked names none)
        self._at: dict[str, str] = {}  # link stream → when its active link was made (signed time, canonical)
        self._in_links: dict[str, set[str]] = {}  # pseudonym → the active link streams it is in
        self._superseded: dict[str, Pair] = {}  # old number → its link, undone for a second change: retired for good

    def resolve(self, pseudonym: str) -> str:
        return self.person.get(pseudonym, pseudonym)

    def aliases(self, subject: str) -> tuple[str, ...]:
        person = self.resolve(subject)
        return tuple(sorted({subject, person, *self.members.get(person, ())}))

    def link(self, stream: str, old: str | None, new: str, at: str) -> None:
        """``Linked`` (``old`` given) or ``Relinked`` (``old`` None: the stream's own): as
        ``projections.flag_links.link``, both numbers now name the new number's person; ``old`` is retired."""
        old = old if old is not None else self._old.get(stream)
        if old is None:  # (a Relinked's Linked is on the same chained stream, so always known)
            return
        self._links[stream] = (old, new)
        self._old[stream] = old
        self._at[stream] = at
        for p in (old, new):
            self._in_links.setdefault(p, set()).add(stream)
        self._join(old, new)

    def _join(self, old: str, new: str) -> None:
        p_old, p_new = self.resolve(old), self.resolve(new)
        members = self.members.setdefault(p_new, set())
        for p in (old, new):
            previous = self.person.get(p)
            if previous is not None and previous != p_new:
                self.members.get(previous, set()).discard(p)
            self.person[p] = p_new
            members.add(p)
        if p_old != p_new:
            for p in self.members.pop(p_old, set()):
                self.person[p] = p_new
                members.add(p)

    def unlink(self, stream: str, second_change: bool) -> tuple[set[str], str] | None:
        """Undo the stream's link; (the numbers its person had, regrouped by the links left; when the link was
        made), or None if the link was not active. A ``second_change`` keeps the old number retired for good."""
        link = self._links.pop(stream, None)
        if link is None:
            return None
        at = self._at.pop(stream, "")
        for p in link:
            streams = self._in_links.get(p, set())
            streams.discard(stream)
            if not streams:
                self._in_links.pop(p, None)
        if second_change:
            self._superseded[link[0]] = link
        members = self.members.pop(self.resolve(link[0]), set()) | set(link)
        for p in members:
            self.person.pop(p, None)
        for old, new in sorted(v for v in self._links.values() if v[0] in members):  # (old logs: chains)
            self._join(old, new)
        return members, at

    def linked(self, pseudonym: str) -> Pair | None:
        """The active link (old, new) ``pseudonym`` is in, by any agency (the first, for old logs' chains), or the
        link a second change undid if it is that link's old number (retired for good); None: free to link."""
        streams = self._in_links.get(pseudonym)
        return min(self._links[s] for s in streams) if streams else self._superseded.get(pseudonym)

    def retired(self, pseudonym: str) -> bool:
        """The old number of an active link, or of one a second change undid: its card names nobody."""
        if pseudonym in self._superseded:
            return True
        return any(self._links[s][0] == pseudonym for s in self._in_links.get(pseudonym, ()))
