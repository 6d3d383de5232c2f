"""Security decisions from the signed log, not from view rows anyone with database access can edit.

Whether a provision request is held, which provision records the portal hides, who may look at them (the
person, any of their numbers, an active proxy), whether self-information is withheld and whether a counter
may name a provider are decided here, from an in-memory state derived from *verified* events only:

* who holds which flag on which pseudonym (the holding agency is the event's signer, ``header.origin``,
  never the payload's ``agency`` field: a peer cannot set or release another agency's flag by naming it);
* when ``NON_DISCLOSURE`` (and any flag) last ended on each pseudonym, for the portal's sticky cutoff;
* which pseudonyms name one person (number changes), as ``projections.flag_state`` joins them, which of them
  are retired (the old number of an active link: its card is nobody's on the portal), and which holdings keep
  protecting a number after an unlink because they were set through the link (``carried``);
* which proxy registrations are active, and which guardians or proxies are barred from acting for a person
  (``GuardianBar``, issue 21: refused while any flag protects the person).

A provision record row is checked against its own signed ``Received`` event by
:class:`projections.record_check.RecordCheck`.

It is built from the log on first use and followed before each decision: one look at the log's last
position, and only the new events of these aggregates read. Every event read is checked as the projector and
the as-of replay check it (the row against its signed header, the payload digest, the batch signature with a
key valid at the event's time) and chained to the previous event of its stream; an event that fails stops the
state there with an ``IntegrityError`` naming its position, and every decision fails until the log is fixed
(a request then gets no automatic answer; the portal shows nothing).

The views (``agency_flags``, ``national_flags``, ``portal_flag_intervals``, ``subject_alias``,
``portal_proxies``) still exist for staff listings and reports; ``flagledger audit views`` compares them with
a rebuild from the log. Memory: see ``docs/security-views.md`` (about 0.5 kB per protected person).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from ledger.domain.flags import Protection
from ledger.domain.guardians import GuardianBar
from ledger.domain.identity import ProxyRegistration, PseudonymLink
from ledger.domain.types import Flag
from ledger.errors import ChainError, FlagLedgerError, IntegrityError, UntrustedKeyError
from ledger.log.envelope import GENESIS, Envelope
from ledger.log.subject_payload import ENC_DK1
from projections.log_position import last_position as _last_position
from projections.portal import OPEN_END, canonical_time
from projections.verified_bars import GuardianBars
from projections.verified_links import NumberLinks

if TYPE_CHECKING:
    from ledger.app import FlagLedger

__all__ = ["Person", "VerifiedState", "state_topics"]

ND = Flag.NON_DISCLOSURE.value
NAR = Flag.NO_AUTO_RESPONSE.value
Pair = tuple[str, str]  # (flag, holding agency)


def _event_topics(cls: type) -> list[str]:
    """Every event topic of an aggregate class (new event kinds are followed without listing them here)."""
    base: type = cls.Event  # type: ignore[attr-defined]
    return sorted(get_topic(v) for v in vars(cls).values() if isinstance(v, type) and issubclass(v, base))


def state_topics() -> list[str]:
    return (
        _event_topics(Protection)
        + _event_topics(PseudonymLink)
        + _event_topics(ProxyRegistration)
        + _event_topics(GuardianBar)
    )


PROTECTION = get_topic(Protection) + "."
LINK = get_topic(PseudonymLink) + "."
PROXY = get_topic(ProxyRegistration) + "."
BAR = get_topic(GuardianBar) + "."
USED = frozenset(
    {
        PROTECTION + "FlagsSet",
        PROTECTION + "FlagsReleased",
        LINK + "Linked",
        LINK + "Relinked",
        LINK + "Unlinked",
        PROXY + "Registered",
        PROXY + "Cancelled",
        PROXY + "CancelledThroughHub",  # hub mode: another agency cancelled this one's registration
        BAR + "Proposed",
        BAR + "Approved",
        BAR + "Lifted",
    }
)  # the topics apply() folds in
Held = tuple[str, Pair]  # (pseudonym, (flag, agency)): one holding on one number


@dataclass(frozen=True)
class Person:
    """What the verified log says about the person one pseudonym names, at one log position."""

    subject: str
    aliases: tuple[str, ...]  # every pseudonym of the person, sorted (the subject included)
    holdings: tuple[tuple[str, str, str], ...]  # (agency, pseudonym, flag) held now, sorted
    nd_cutoff: str  # records created before this are hidden on the portal ("": never NON_DISCLOSURE)
    cutoff: str | None  # the same over every flag (None: never protected)

    @property
    def protected(self) -> bool:
        return bool(self.holdings)

    @property
    def nar(self) -> bool:
        return any(f == NAR for _, _, f in self.holdings)

    def flags(self) -> dict[str, list[str]]:
        """Flag → holding agencies (the request path's view of the person)."""
        out: dict[str, set[str]] = {}
        for agency, _, flag in self.holdings:
            out.setdefault(flag, set()).add(agency)
        return {f: sorted(a) for f, a in sorted(out.items())}


class VerifiedState:
    """The decisions' state, built from verified events and followed from the log (see the module docstring).

    Thread-safe: the API answers from several threads; one lock covers catching up and reading.
    """

    def __init__(self, app: FlagLedger, page: int = 1000) -> None:
        self.app = app
        self.page = page
        self.topics = state_topics()
        self.position = 0  # every event up to here is applied
        self._lock = threading.RLock()
        self._held: dict[str, tuple[Pair, ...]] = {}  # pseudonym → (flag, agency) pairs held now
        self._ended_nd: dict[str, str] = {}  # pseudonym → latest end of a NON_DISCLOSURE holding
        self._ended_any: dict[str, str] = {}  # pseudonym → latest end of any holding
        self._links = NumberLinks()  # which pseudonyms name one person, which are retired
        self._through: set[Held] = set()  # holdings set on a number while it was linked (in this log's order)
        self._set_at: dict[str, str] = {}  # pseudonym → the signed time of the latest FlagsSet on it
        self._carried: dict[str, set[Held]] = {}  # pseudonym → holdings on another number that still protect it
        self._carriers: dict[Held, set[str]] = {}  # the reverse of _carried
        self._proxies: dict[str, tuple[str, ...]] = {}  # subject → active proxies
        self._registrations: dict[str, Pair] = {}  # registration stream → (subject, proxy)
        self._bars = GuardianBars()  # guardians or proxies barred from acting for a person
        self._heads: dict[str, bytes] = {}  # stream → version (4 bytes) + leaf hash of its last event
        self._pairs: dict[Pair, Pair] = {}  # one tuple per (flag, agency) pair
        self._names: dict[str, str] = {}  # one string per agency code and flag name
        self._last = _last_position(app)

    # -- following the log ---------------------------------------------------------------------------
    def fresh(self) -> None:
        """Apply the events appended since the last look (by any process): one query when there are none."""
        with self._lock:
            end = self._last()
            if end > self.position:
                self._follow(end)

    def _follow(self, end: int) -> None:
        recorder, mapper = self.app.recorder, self.app.signed_mapper
        start = self.position + 1
        reloaded = False
        while start <= end:
            rows = recorder.select_notifications(start=start, limit=self.page, stop=end, topics=self.topics)
            for n in rows:
                try:
                    env = mapper.open(n.state)
                    mapper.check_row(n, env)
                    try:
                        mapper.verify(env)
                    except UntrustedKeyError:
                        if reloaded:
                            raise
                        # a key registered by another process of this node (rotation, trust): read the
                        # registry again once, then decide
                        reloaded = True
                        self.app.load_keyring()
                        mapper.verify(env)
                    self._chain(env)
                    if env.header.enc == ENC_DK1 and n.topic not in USED:
                        pass  # a person's local event (issue 22), maybe erased: its fields decide nothing here
                    elif n.topic in USED:
                        self.apply(env, mapper.decode(env))
                    else:  # e.g. Protection.Opened: its chain link counts, its fields decide nothing
                        mapper.check_decodes(env)
                except FlagLedgerError as exc:
                    raise IntegrityError(
                        f"position {n.id} ({n.topic}) does not verify: {exc}. Decisions stop here until the log "
                        "is repaired; run `flagledger audit verify` to see what is wrong",
                        code=exc.code,
                    ) from exc
                self.position = n.id
            if len(rows) < self.page:
                break
            start = rows[-1].id + 1
        self.position = end

    def _chain(self, env: Envelope) -> None:
        h = env.header
        head = self._heads.get(h.stream)
        if head is None:
            ok = h.version == 1 and h.prev == GENESIS
        else:
            ok = h.version == int.from_bytes(head[:4], "big") + 1 and h.prev == head[4:].hex()
        if not ok:
            raise ChainError(f"v{h.version} of stream {h.stream} does not chain to the stream's previous event")
        self._heads[h.stream] = h.version.to_bytes(4, "big") + env.leaf_hash

    def apply(self, env: Envelope, event: Any) -> None:
        """Fold one verified (and chained) event into the state."""
        h = env.header
        topic = h.topic
        if topic.startswith(PROTECTION):
            kind = topic[len(PROTECTION) :]
            if kind == "FlagsSet":
                self._set(self._name(h.origin), str(event.subject), event.flags, canonical_time(h.time))
            elif kind == "FlagsReleased":
                self._release(self._name(h.origin), str(event.subject), event.flags, canonical_time(h.time))
        elif topic == LINK + "Linked":
            self._links.link(h.stream, str(event.old), str(event.new), canonical_time(h.time))
        elif topic == LINK + "Relinked":
            self._links.link(h.stream, None, str(event.new), canonical_time(h.time))
        elif topic == LINK + "Unlinked":
            self._unlink(h.stream, getattr(event, "second_change", False) is True)
        elif topic == PROXY + "Registered":
            subject, proxy = str(event.subject), str(event.proxy)
            self._registrations[h.stream] = (subject, proxy)
            current = self._proxies.get(subject, ())
            if proxy not in current:
                self._proxies[subject] = (*current, proxy)
        elif topic in (PROXY + "Cancelled", PROXY + "CancelledThroughHub"):
            reg = self._registrations.get(h.stream)
            if reg is not None:
                subject, proxy = reg
                left = tuple(p for p in self._proxies.get(subject, ()) if p != proxy)
                if left:
                    self._proxies[subject] = left
                else:
                    self._proxies.pop(subject, None)
        elif topic.startswith(BAR):
            self._bars.apply(h.stream, topic[len(BAR) :], event)

    def _name(self, value: str) -> str:
        return self._names.setdefault(value, value)

    def _pair(self, flag: str, agency: str) -> Pair:
        pair = (self._name(flag), agency)
        return self._pairs.setdefault(pair, pair)

    def _set(self, agency: str, subject: str, flags: Iterable[str], at: str) -> None:
        held = self._held.get(subject, ())
        if at > self._set_at.get(subject, ""):
            self._set_at[subject] = at
        linked = subject in self._links.person
        for flag in flags:
            pair = self._pair(str(flag), agency)
            if pair not in held:
                held = (*held, pair)
            if linked:  # set through the link: kept on both sides if the link is undone
                self._through.add((subject, pair))
        self._held[subject] = held

    def _release(self, agency: str, subject: str, flags: Iterable[str], at: str) -> None:
        held = self._held.get(subject, ())
        for flag in flags:
            pair = self._pair(str(flag), agency)
            if pair not in held:
                continue  # nothing held: no holding ends (as the portal's intervals: none was open)
            held = tuple(p for p in held if p != pair)
            self._through.discard((subject, pair))
            # the holding ends for its own number and for every number it was carried to after an unlink
            for number in (subject, *self._carriers.pop((subject, pair), ())):
                if number != subject:
                    self._carried[number].discard((subject, pair))
                    if not self._carried[number]:
                        del self._carried[number]
                if pair[0] == ND and at > self._ended_nd.get(number, ""):
                    self._ended_nd[number] = at
                if at > self._ended_any.get(number, ""):
                    self._ended_any[number] = at
        if held:
            self._held[subject] = held
        else:
            self._held.pop(subject, None)

    def _unlink(self, stream: str, second_change: bool) -> None:
        """A wrong link undone: the person's numbers are grouped again by the links left, and a holding set
        through the link on one side keeps protecting the numbers now apart from it (``carried``), until its
        holder releases it — an unlink never silently unprotects the real victim, whichever side that is.
        A holding set before the link stays with its own number only (docs/operations.md, Number changes); the
        approval tells the staff which flags no longer cover a number. A ``second_change`` (the person's number
        changed again) carries every holding both ways and keeps the old number retired for good."""
        links = self._links
        undone = links.unlink(stream, second_change)
        if undone is None:
            return
        members, linked_at = undone
        # set through the link: after it in this log, or (whatever order the two reached this node in) a flag set
        # on that number at or after the link's signed time — so every node carries it; in doubt, carried
        through = sorted(
            (p, pair)
            for p in members
            for pair in self._held.get(p, ())
            if second_change or (p, pair) in self._through or self._set_at.get(p, "") >= linked_at
        )
        # the portal's sticky cutoff never moves back: records hidden while the numbers were one person stay
        # hidden on every one of them (else a proxy would see what a protection hid the moment it is unlinked)
        for ended in (self._ended_nd, self._ended_any):
            last = max((ended.get(p, "") for p in members), default="")
            if last:
                ended.update(dict.fromkeys(members, last))
        for held in through:
            src = links.resolve(held[0])
            for p in members:
                if links.resolve(p) != src:
                    self._carried.setdefault(p, set()).add(held)
                    self._carriers.setdefault(held, set()).add(p)
        self._through.difference_update([h for h in through if h[0] not in links.person])

    # -- reading ---------------------------------------------------------------------------------------
    def _aliases(self, subject: str) -> tuple[str, ...]:
        return self._links.aliases(subject)

    def flags_for(self, subject: str) -> dict[str, list[str]]:
        """The request path's read: flag → holding agencies on the person ``subject`` names, nationwide."""
        with self._lock:
            self.fresh()
            person = self._links.person.get(subject)
            if person is None and subject not in self._carried:  # the usual case: a person with one number
                held = self._held.get(subject)
                if not held:
                    return {}
                out: dict[str, list[str]] = {}
                for flag, agency in held:
                    out.setdefault(flag, []).append(agency)
            else:
                found: dict[str, set[str]] = {}
                for agency, _, flag in self._holdings(self._aliases(subject)):
                    found.setdefault(flag, set()).add(agency)
                out = {f: list(a) for f, a in found.items()}
        for holders in out.values():
            holders.sort()
        return out

    def person(self, subject: str) -> Person:
        """Everything the decisions about ``subject``'s person need, read at one log position."""
        with self._lock:
            self.fresh()
            return self._person_now(subject)

    def _person_now(self, subject: str) -> Person:
        names = self._aliases(subject)
        holdings = self._holdings(names)
        nd_open = any(f == ND for _, _, f in holdings)
        nd_ended = max((self._ended_nd.get(p, "") for p in names), default="")
        any_ended = max((self._ended_any.get(p, "") for p in names), default="")
        nd_cutoff = OPEN_END if nd_open else nd_ended
        cutoff = OPEN_END if holdings else (any_ended or None)
        return Person(subject, names, tuple(holdings), nd_cutoff, cutoff)

    def _holdings(self, names: Iterable[str]) -> list[tuple[str, str, str]]:
        """(agency, pseudonym, flag) held on ``names``, and held elsewhere but carried to them, sorted."""
        found: set[tuple[str, str, str]] = set()
        for p in names:
            found.update((a, p, f) for f, a in self._held.get(p, ()))
            found.update((a, src, f) for src, (f, a) in self._carried.get(p, ()))
        return sorted(found)

    def linked(self, pseudonym: str) -> tuple[str, str] | None:
        """The active link (old, new) ``pseudonym`` is in, by any agency (the first, for old logs' chains), or the
        link a second change undid if it is that link's old number (retired for good); None: free to link."""
        with self._lock:
            self.fresh()
            return self._links.linked(pseudonym)

    def retired(self, pseudonym: str) -> bool:
        """The old number of an active link: since the number change its card names nobody."""
        with self._lock:
            self.fresh()
            return self._links.retired(pseudonym)

    def carried(self, pseudonym: str) -> list[str]:
        """Flags protecting ``pseudonym`` only because they were set on a number it was wrongly linked to."""
        with self._lock:
            self.fresh()
            return sorted({f for _, (f, _) in self._carried.get(pseudonym, ())})

    def portal_access(self, viewer: str, subject: str) -> tuple[str, Person]:
        """("self" | "proxy" | "none", the subject's person): the subject's credentials (any of their current
        numbers) or an active proxy registration between any number of each. A retired card (the old number
        of a number change) is nobody's: "none" for every subject, its own included."""
        with self._lock:
            self.fresh()
            person = self._person_now(subject)
            if self._links.retired(viewer):
                return "none", person
            if viewer in person.aliases:
                return "self", person
            viewers = set(self._aliases(viewer))
            if person.protected and self._bars.any_barred(person.aliases, viewers):
                return "none", person  # a barred guardian acts for nobody while the person is protected
            for p in person.aliases:
                if viewers.intersection(self._proxies.get(p, ())):
                    return "proxy", person
            return "none", person

    def barred(self, subject: str, guardian: str) -> bool:
        """Whether ``guardian`` (any of their numbers) may not act for ``subject`` now: a bar in force on any of
        the subject's numbers while any flag protects them."""
        with self._lock:
            self.fresh()
            person = self._person_now(subject)
            return person.protected and self._bars.any_barred(person.aliases, set(self._aliases(guardian)))

    def holdings_of(self, agency: str) -> list[tuple[str, str]]:
        """(pseudonym, flag) of every flag ``agency`` holds now (the liaison resolution reads this)."""
        with self._lock:
            self.fresh()
            return sorted((p, f) for p, held in self._held.items() for f, a in held if a == agency)

    def size(self) -> dict[str, int]:
        """How much the state holds (for the memory figure and `view positions`)."""
        with self._lock:
            return {
                "position": self.position,
                "protected_pseudonyms": len(self._held),
                "released_pseudonyms": len(self._ended_any),
                "linked_pseudonyms": len(self._links.person),
                "carried_pseudonyms": len(self._carried),
                "proxied_subjects": len(self._proxies),
                "barred_subjects": len(self._bars),
                "streams": len(self._heads),
            }
