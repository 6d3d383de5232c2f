"""The one bound of every free-text and identifier field, and the checks every edge makes with it.

Each bound is defined here once and reused by the views' column sizes (``projections``), the API's schemas
(``ledger.api.schemas``), the CLI's argument parsing (``ledger.cli.parsing``), the events the aggregates save
and the events peers send (:mod:`ledger.domain.event_fields`; a peer's event over a bound is parked at ingest
with code ``oversize``). A value that passed these checks fits every view column: PostgreSQL refuses a string
longer than its column (``StringDataRightTruncation``), a NUL character, and text that is not UTF-8 (a lone
surrogate), and one such value from any peer used to stop every view of every PostgreSQL node.

Errors name the field and never echo the value: it may be (or contain) an individual number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import Code, InputError

__all__ = [
    "ACTOR",
    "AGENCY_CODE",
    "DATE",
    "ENUM",
    "INFO_KIND",
    "KEY_ID",
    "NAME",
    "NOTE",
    "PATH",
    "PROCEDURE",
    "PURPOSE",
    "STAFF_ID",
    "SUBJECT",
    "TIME",
    "WHAT",
    "Bound",
    "bad_text",
    "check_text",
    "fit_text",
]


@dataclass(frozen=True)
class Bound:
    """At most ``max`` characters (and at least ``min``)."""

    max: int
    min: int = 0


# identifiers (their shape is checked too: ledger.domain.types, ledger.log.pseudonym)
AGENCY_CODE = Bound(32)  # a 6-digit local government code or an upper-case identifier (SC-TOKYO)
STAFF_ID = Bound(64)
ACTOR = Bound(AGENCY_CODE.max + 1 + STAFF_ID.max)  # AGENCY/STAFF
SUBJECT = Bound(40, 1)  # an individual number as typed (hyphens, spaces) or its pseudonym p<32 hex>
KEY_ID = Bound(64)  # AGENCY:16 hex digits
ENUM = Bound(24)  # the longest value of any of our enumerations (flags, roles, reasons, kinds, …)
DATE = Bound(10)  # YYYY-MM-DD
TIME = Bound(40)  # ISO 8601 with offset (canonical UTC times are 27 characters)

# free text, in words
PROCEDURE = Bound(200, 1)  # the procedure a provision request serves (e.g. 児童手当)
INFO_KIND = Bound(200, 1)  # the kind of information asked for (e.g. 地方税関係情報)
NAME = Bound(200)  # an agency's or a staff member's name
NOTE = Bound(2000)  # notes, explanations, notes on approvals and decisions, reasons given in words
PURPOSE = Bound(500)  # why protected details are read
WHAT = Bound(200)  # what was read (AccessRecord)
PATH = Bound(1024)  # where an audit report was written

# What no stored text may hold: control characters other than tab and newlines, and lone surrogates (argv
# bytes that are not UTF-8 arrive as surrogate escapes; JSON can spell them as \ud800).
_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
find_bad = _BAD.search  # (for the hot paths that check many fields: None when the text is clean)


def bad_text(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (no value echoed), or None."""
    if _BAD.search(value) is None:
        return None
    if re.search(r"[\ud800-\udfff]", value):
        return "is not valid UTF-8 text"
    return "contains control characters"


def check_text(field: str, value: object, bound: Bound) -> str:
    """``value`` if it is a string within ``bound`` and free of control characters; else InputError naming
    ``field`` (code ``oversize`` when it is only too long)."""
    if not isinstance(value, str):
        raise InputError(f"{field} must be text", field=field)
    if len(value) > bound.max:
        raise InputError(f"{field} is longer than {bound.max} characters", field=field, code=Code.OVERSIZE)
    if len(value) < bound.min:
        raise InputError(f"{field} is required", field=field)
    why = bad_text(value)
    if why is not None:
        raise InputError(f"{field} {why}", field=field)
    return value


def fit_text(value: str, bound: Bound) -> str:
    """Text the node writes itself from what it was sent (e.g. why it holds an agency), made to fit ``bound``:
    control characters and lone surrogates become ``?`` and the end is cut off."""
    value = _BAD.sub("?", value)
    return value if len(value) <= bound.max else value[: bound.max - 1] + "…"
