"""The rules a field of an event may be held to — text within a bound, a shape, an enumeration, a whole number,
a day, a moment, a list, a record — and the shapes shared by many fields (agency codes, staff ids, pseudonyms,
key ids). :mod:`ledger.domain.event_fields` says which rule each field of each event gets."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from ledger.domain import bounds
from ledger.domain.bounds import Bound, check_text
from ledger.domain.cases import CHECKLIST_ITEMS
from ledger.errors import Code, InputError

Rule = Callable[[str, Any], None]


def _schema(field: str, what: str) -> InputError:
    return InputError(f"{field} must be {what}", field=field, code=Code.SCHEMA)


# Each rule answers a valid value in one or two cheap tests (every saved and every ingested event passes through
# here: figures "signed append", "ingest") and only works out which error to raise when the value is not.


def text(bound: Bound) -> Rule:
    least, most, bad = bound.min, bound.max, bounds.find_bad

    def rule(field: str, value: Any) -> None:
        if type(value) is str and least <= len(value) <= most and bad(value) is None:
            return
        check_text(field, value, bound)

    return rule


def shaped(pattern: str, bound: Bound, what: str) -> Rule:
    """Text of a fixed shape (codes, ids, hex), no longer than ``bound`` by its pattern; longer than ``bound`` is
    ``oversize``, any other mismatch ``schema``."""
    match = re.compile(pattern).fullmatch

    def rule(field: str, value: Any) -> None:
        if type(value) is str and match(value):
            return
        check_text(field, value, bound)
        if not match(value):
            raise _schema(field, what)

    return rule


def enum(kind: type[StrEnum] | tuple[str, ...]) -> Rule:
    allowed = frozenset(m.value for m in kind) if isinstance(kind, type) else frozenset(kind)

    def rule(field: str, value: Any) -> None:
        if type(value) is str and value in allowed:
            return
        check_text(field, value, bounds.ENUM)
        raise _schema(field, "one of " + ", ".join(sorted(allowed)))

    return rule


def integer(low: int, high: int) -> Rule:
    def rule(field: str, value: Any) -> None:
        if type(value) is not int or not low <= value <= high:  # (True is an int to Python, not to us)
            raise _schema(field, f"a whole number from {low} to {high}")

    return rule


def uuid(field: str, value: Any) -> None:
    if not isinstance(value, UUID):
        raise _schema(field, "an id (UUID)")


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch


def day(field: str, value: Any) -> None:
    check_text(field, value, bounds.DATE)
    try:
        if _DAY(value):
            date.fromisoformat(value)
            return
    except ValueError:
        pass
    raise _schema(field, "a date (YYYY-MM-DD)")


def moment(field: str, value: Any) -> None:
    check_text(field, value, bounds.TIME)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _schema(field, "an ISO 8601 time") from None


def optional(rule: Rule) -> Rule:
    def check(field: str, value: Any) -> None:
        if value is not None:
            rule(field, value)

    return check


def list_of(rule: Rule, most: int) -> Rule:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, list):
            raise _schema(field, "a list")
        if len(value) > most:
            raise InputError(f"{field} has more than {most} entries", field=field, code=Code.OVERSIZE)
        for item in value:
            rule(field, item)

    return check


def checklist(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _schema(field, "a checklist")
    for item, done in value.items():
        if item not in CHECKLIST_ITEMS or type(done) is not bool:
            raise _schema(field, "a checklist of known items")


AGENCY = shaped(r"[0-9]{6}|[A-Z0-9][A-Z0-9_-]{1,31}", bounds.AGENCY_CODE, "an agency code")
STAFF = shaped(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", bounds.STAFF_ID, "a staff id")
ACTOR = shaped(r"([0-9]{6}|[A-Z0-9][A-Z0-9_-]{1,31})/[A-Za-z0-9][A-Za-z0-9._-]{0,63}", bounds.ACTOR, "AGENCY/STAFF")
# a staff id, or AGENCY/STAFF where a co-approving agency's administrator acted (break-glass role grants)
STAFF_OR_ACTOR = shaped(
    r"(([0-9]{6}|[A-Z0-9][A-Z0-9_-]{1,31})/)?[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    bounds.ACTOR,
    "a staff id or AGENCY/STAFF",
)
PSEUDONYM = shaped(r"p[0-9a-f]{32}", bounds.SUBJECT, "a pseudonym")
KEY_ID = shaped(r"[A-Z0-9][A-Z0-9_-]{1,31}:[0-9a-f]{16}", bounds.KEY_ID, "a key id")


def hex_digits(n: int) -> Rule:
    return shaped(f"[0-9a-f]{{{n}}}", Bound(n), f"{n} hex digits")


HASH = hex_digits(64)
ARGON2 = shaped(
    r"\$argon2id\$v=19\$m=[0-9]{1,8},t=[0-9]{1,3},p=[0-9]{1,3}\$[A-Za-z0-9+/]{8,64}\$[A-Za-z0-9+/]{16,128}",
    Bound(256),
    "an argon2id hash",
)
CODE = shaped(r"[a-z_]{1,40}", Bound(40), "a reason code")
_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def boolean(field: str, value: Any) -> None:
    if type(value) is not bool:
        raise _schema(field, "true or false")


SIZE = integer(0, 2**63 - 1)


def record(rules: Mapping[str, Rule], optional_keys: frozenset[str] = frozenset()) -> Rule:
    """A dict with exactly these keys (those in ``optional_keys`` may be absent), each within its rule."""
    required = frozenset(rules) - optional_keys

    def rule(field: str, value: Any) -> None:
        if not isinstance(value, dict) or not required <= value.keys() <= rules.keys():
            raise _schema(field, "a record of " + ", ".join(sorted(rules)))
        for k, v in value.items():
            rules[k](field, v)

    return rule
