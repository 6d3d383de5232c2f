"""Agency-specific codes (機関別符号), the hub's person ids, and the hub's map between them.

* **An agency's code** for a person is HMAC-SHA256 of the individual number under the agency's own secret
  (256 random bits made by the agency and never shared; not yet kept in the node's key store: docs/linkage.md).
  The agency computes it at its counter from the number it was shown, offline (a local flag still protects
  while the hub is unreachable). Another agency — or an insider with another agency's whole data directory —
  has a different secret, so it cannot compute this code, nor test a guessed number against it.
* **The portal's code** is the same construction under the portal's own secret, with its own label: it
  equals no agency's code.
* **The hub's person id** is HMAC-SHA256 of the number under the hub's secret. The number reaches the hub only
  inside a :class:`Registration` sealed to the hub (ledger.linkage.sealing); the hub computes the id in memory,
  binds (holder, code) → person in its :class:`CodeMap`, and keeps no number.
* **Number changes** are links between two person ids at the hub (old → new), so a person's codes under every
  number they have had are found from any one of them. A number is the new side of one link at most, and a
  link never closes a loop (``link_conflict``, as for the ledger's own links).

Every label differs per role, so the three derivations can never collide even under one secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ledger.errors import Code, InputError, NotFoundError, PermissionDenied, StateConflict
from ledger.linkage.names import HUB, PORTAL, check_party
from ledger.log.keyed_hash import KeyedHash
from ledger.log.pseudonym import valid_individual_number

__all__ = [
    "SECRET_BYTES",
    "CodeMap",
    "MemoryCodeMap",
    "Registration",
    "agency_code",
    "check_code",
    "codes_of",
    "holders_of",
    "hub_person",
    "link_numbers",
    "persons_of",
    "portal_code",
    "register",
    "translate",
]

SECRET_BYTES = 32
_CODE = re.compile(r"^[ahm][0-9a-f]{32}$")


def _number(number: str) -> str:
    number = number.strip().replace("-", "").replace(" ", "")
    if not valid_individual_number(number):
        # the value is never echoed: it is an individual number, or a mistyped one
        raise InputError("not a valid 12-digit individual number", field="number")
    return number


def _mac(secret: bytes | KeyedHash, label: str, who: str, number: str) -> str:
    """``secret``: the bytes, or a :class:`KeyedHash` computing the HMAC where the secret lives (an HSM)."""
    if isinstance(secret, bytes) and len(secret) < SECRET_BYTES:
        raise InputError(f"a code secret must be at least {SECRET_BYTES} bytes", code=Code.CONFIGURATION)
    message = f"flagledger/linkage/{label}/1\x00{who}\x00{_number(number)}".encode()
    return KeyedHash.of(secret, SECRET_BYTES)(message).hex()[:32]


def agency_code(secret: bytes | KeyedHash, agency: str, number: str) -> str:
    """``agency``'s own code for the holder of ``number``, under ``agency``'s own secret."""
    return "a" + _mac(secret, "agency-code", check_party(agency, "agency"), number)


def portal_code(secret: bytes | KeyedHash, number: str) -> str:
    """The portal's own code for the holder of ``number`` (a card sign-in is mapped to it)."""
    return "m" + _mac(secret, "portal-code", PORTAL, number)


def hub_person(secret: bytes | KeyedHash, number: str) -> str:
    """The hub's id for the holder of ``number``; only the hub holds ``secret``."""
    return "h" + _mac(secret, "hub-person", HUB, number)


def check_code(code: str, what: str = "code") -> str:
    if not isinstance(code, str) or not _CODE.match(code):
        raise InputError(f"{what} is not an agency, portal or hub code", code=Code.MALFORMED, field=what)
    return code


@dataclass(frozen=True)
class Registration:
    """What a holder (agency or portal) sends the hub, sealed to it, the first time it meets a person: its own
    code and the number. The only message that carries a number; the hub reads it in memory and forgets it."""

    holder: str
    code: str
    number: str = field(repr=False)  # never in a log line or a traceback's locals

    def encode(self) -> bytes:
        return json.dumps({"holder": self.holder, "code": self.code, "number": self.number}).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Registration:
        try:
            data = json.loads(payload)
            reg = cls(str(data["holder"]), str(data["code"]), str(data["number"]))
        except (ValueError, KeyError, TypeError):
            raise InputError("a registration must be JSON with holder, code and number", code=Code.MALFORMED) from None
        check_party(reg.holder, "holder")
        check_code(reg.code)
        _number(reg.number)
        return reg

    @classmethod
    def sent_by(cls, sender: str, payload: bytes) -> Registration:
        """The registration in a message whose signature verified as ``sender``'s: a holder registers only its
        own codes (a peer filing codes in another agency's name is refused, ``wrong_agency``)."""
        reg = cls.decode(payload)
        if reg.holder != sender:
            raise PermissionDenied(f"{sender} sent a registration in {reg.holder}'s name", code=Code.WRONG_AGENCY)
        return reg


class CodeMap(Protocol):
    """The hub's store: (holder, code) ↔ person id, and number-change links between person ids. Holds no
    number. :class:`MemoryCodeMap` is the in-memory one, ``ledger.hub.codemap.SqlCodeMap`` the database one
    (one contract test runs both). ``bind`` and ``add_link`` refuse (``conflict``, ``link_conflict``) what would
    rebind a code, give a holder a second code for a person, or put a number on one side of two links."""

    def person(self, holder: str, code: str) -> str | None: ...

    def codes(self, person: str) -> dict[str, str]:
        """Holder → code, for each holder that registered this person id."""
        ...

    def bind(self, holder: str, code: str, person: str) -> None: ...

    def previous(self, person: str) -> str | None:
        """The person id this one was linked from (the old number's), if any."""
        ...

    def next(self, person: str) -> str | None: ...

    def add_link(self, old: str, new: str) -> None: ...


@dataclass
class MemoryCodeMap:
    by_code: dict[tuple[str, str], str] = field(default_factory=dict)
    by_person: dict[str, dict[str, str]] = field(default_factory=dict)
    old_of: dict[str, str] = field(default_factory=dict)
    new_of: dict[str, str] = field(default_factory=dict)

    def person(self, holder: str, code: str) -> str | None:
        return self.by_code.get((holder, code))

    def codes(self, person: str) -> dict[str, str]:
        return dict(self.by_person.get(person, {}))

    def bind(self, holder: str, code: str, person: str) -> None:
        # refused, never overwritten, as the database's constraints refuse it (ledger/hub/codemap.py)
        if (holder, code) in self.by_code or holder in self.by_person.get(person, {}):
            raise StateConflict(f"{holder}'s code, or its code for this person, is already bound at the hub")
        self.by_code[(holder, code)] = person
        self.by_person.setdefault(person, {})[holder] = code

    def previous(self, person: str) -> str | None:
        return self.old_of.get(person)

    def next(self, person: str) -> str | None:
        return self.new_of.get(person)

    def add_link(self, old: str, new: str) -> None:
        if new in self.old_of or old in self.new_of:
            raise StateConflict("one of the numbers is already part of another number change", code=Code.LINK_CONFLICT)
        self.old_of[new] = old
        self.new_of[old] = new


def register(store: CodeMap, hub_secret: bytes | KeyedHash | Callable[[str], str], registration: Registration) -> str:
    """Bind the holder's code to the hub's person id for the registration's number; returns the person id.
    ``hub_secret``: the secret, its :class:`KeyedHash` (the HMAC computed where it lives), or what computes the
    person id of a number (``ledger.hub.person_ids``). Registering again is a no-op; a code that already names another
    person, or a second code of one holder for one person (its secret was replaced), is refused: one code, one
    person, per holder."""
    number = registration.number
    person = hub_person(hub_secret, number) if isinstance(hub_secret, bytes | KeyedHash) else hub_secret(number)
    bound = store.person(registration.holder, registration.code)
    if bound is not None and bound != person:
        raise StateConflict(f"{registration.holder}'s code already names another person at the hub")
    held = store.codes(person).get(registration.holder)
    if held is not None and held != registration.code:
        raise StateConflict(f"{registration.holder} already registered this person under another code")
    if bound is None:
        store.bind(registration.holder, registration.code, person)
    return person


def _found(store: CodeMap, holder: str, code: str) -> str:
    person = store.person(holder, check_code(code))
    if person is None:
        raise NotFoundError(f"{holder} has registered no person under this code at the hub")
    return person


def link_numbers(store: CodeMap, holder: str, old_code: str, new_code: str) -> None:
    """A number change reported by ``holder`` under its codes for the old and the new number (each registered
    first): one person from now on. Refused (``link_conflict``) if the new number already follows another,
    the old one is already followed by another, or the link would close a loop."""
    old, new = _found(store, holder, old_code), _found(store, holder, new_code)
    if old == new:
        raise StateConflict("a number cannot be linked to itself", code=Code.LINK_CONFLICT)
    if store.previous(new) is not None or store.next(old) is not None:
        if store.previous(new) == old:
            return  # the same link again
        raise StateConflict("one of the numbers is already part of another number change", code=Code.LINK_CONFLICT)
    if old in persons_of(store, new):
        raise StateConflict("the link would close a loop of number changes", code=Code.LINK_CONFLICT)
    store.add_link(old, new)


def persons_of(store: CodeMap, person: str) -> list[str]:
    """Every person id of one person, oldest number first (a chain: each number is followed by one at most)."""
    first, seen = person, {person}
    while (old := store.previous(first)) is not None and old not in seen:
        first = old
        seen.add(old)
    chain, at = [first], first
    while (new := store.next(at)) is not None and new not in chain:
        chain.append(new)
        at = new
    return chain


def codes_of(store: CodeMap, holder: str, person: str) -> list[str]:
    """``holder``'s codes for the person, under each of their numbers that ``holder`` registered."""
    return [c for p in persons_of(store, person) if (c := store.codes(p).get(holder)) is not None]


def holders_of(store: CodeMap, person: str, among: Iterable[str] | None = None) -> set[str]:
    """Every holder that registered the person under any of their numbers (``among``: only these)."""
    wanted = set(among) if among is not None else None
    found = {h for p in persons_of(store, person) for h in store.codes(p)}
    return found if wanted is None else found & wanted


def translate(store: CodeMap, holder: str, code: str, to: str) -> list[str]:
    """``to``'s codes for the person ``holder`` knows by ``code``: how the hub turns a query from one agency
    into one the provider understands. Empty if ``to`` never registered the person (it holds nothing)."""
    return codes_of(store, check_party(to, "holder"), _found(store, check_party(holder, "holder"), code))
