"""Plain values of the domain: agency kinds, roles, actions, flags, reasons."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TypeVar

from ledger.errors import InputError


class AgencyKind(StrEnum):
    MUNICIPALITY = "municipality"
    PREFECTURE = "prefecture"
    NATIONAL = "national"
    SUPPORT_CENTRE = "support_centre"  # 配偶者暴力相談支援センター
    CHILD_GUIDANCE_CENTRE = "child_guidance_centre"  # 児童相談所
    POLICE = "police"  # 警察: confirms the need for protection and asks the municipality, like the centres

    @property
    def is_protection_body(self) -> bool:
        """Sends protection requests to a municipality and reads their outcome (docs/bodies.md); holds no flag."""
        return self in (AgencyKind.SUPPORT_CENTRE, AgencyKind.CHILD_GUIDANCE_CENTRE, AgencyKind.POLICE)


class Flag(StrEnum):
    NON_DISCLOSURE = "NON_DISCLOSURE"  # 不開示フラグ
    NO_AUTO_RESPONSE = "NO_AUTO_RESPONSE"  # 自動応答不可フラグ


class Reason(StrEnum):
    DV = "dv"
    STALKING = "stalking"
    CHILD_ABUSE = "child_abuse"
    OTHER = "other"


class Role(StrEnum):
    REQUESTER = "requester"
    APPROVER = "approver"
    OPERATOR = "operator"  # 担当者: the designated person who sets and releases
    COUNTER = "counter"
    REVIEWER = "reviewer"  # decides held provision requests
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"
    # system callers' roles: held only by a system account of their kind (SYSTEM_ROLES), never by staff
    PORTAL = "portal"  # Mynaportal: the person's (or their proxy's) provision records and self-information
    LINKAGE = "linkage"  # the linkage gateway: relays provision requests


class Action(StrEnum):
    OPEN_CASE = "open_case"
    REQUEST_FLAG = "request_flag"  # set, release, renew requests
    APPROVE_FLAG = "approve_flag"
    EXECUTE_FLAG = "execute_flag"
    SET_PROVISIONAL = "set_provisional"  # an emergency flag set alone, co-approved within a business day
    SEND_BODY_REQUEST = "send_body_request"  # protection body asks a municipality
    REQUEST_PROVISION = "request_provision"
    REVIEW_HELD = "review_held"
    APPROVE_HELD = "approve_held"
    COUNTER_LOOKUP = "counter_lookup"
    VIEW_PROTECTED = "view_protected"  # the full (unfiltered) details, e.g. which agency protects
    AUDIT = "audit"
    ADMINISTER = "administer"  # staff, roles, permissions, keys, policy
    REQUEST_LINK = "request_link"  # ask to link or unlink two individual numbers (issue 18)
    APPROVE_LINK = "approve_link"  # approve or reject another staff member's link request
    READ_PORTAL = "read_portal"  # Mynaportal views, for the person or their proxy (the portal's system account)


class RequestKind(StrEnum):
    SET = "set"
    RELEASE = "release"
    RENEW = "renew"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    WITHDRAWN = "withdrawn"


class ProvisionStatus(StrEnum):
    PROVIDED = "provided"  # answered automatically
    HELD = "held"  # waiting for a reviewer (NO_AUTO_RESPONSE)
    PROVIDED_MANUALLY = "provided_manually"
    REFUSED = "refused"


class Applicant(StrEnum):
    """Who stands behind a provision request, as confirmed with the querying agency (Point 5)."""

    PROTECTED_PERSON = "protected_person"
    KNOWN_PERPETRATOR = "known_perpetrator"
    UNKNOWN = "unknown"


DEFAULT_PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.REQUESTER: frozenset({Action.OPEN_CASE, Action.REQUEST_FLAG, Action.SEND_BODY_REQUEST, Action.REQUEST_LINK}),
    Role.APPROVER: frozenset({Action.APPROVE_FLAG, Action.APPROVE_HELD, Action.APPROVE_LINK}),
    Role.OPERATOR: frozenset({Action.EXECUTE_FLAG, Action.SET_PROVISIONAL}),
    Role.COUNTER: frozenset({Action.COUNTER_LOOKUP, Action.REQUEST_PROVISION}),
    Role.REVIEWER: frozenset({Action.REVIEW_HELD, Action.VIEW_PROTECTED}),
    Role.AUDITOR: frozenset({Action.AUDIT, Action.VIEW_PROTECTED}),
    Role.ADMINISTRATOR: frozenset({Action.ADMINISTER}),
    Role.PORTAL: frozenset({Action.READ_PORTAL}),
    Role.LINKAGE: frozenset({Action.REQUEST_PROVISION}),
}


class SystemKind(StrEnum):
    """The kinds of system account: callers that are programs, not people (issue 18)."""

    PORTAL = "portal"  # マイナポータル
    LINKAGE_GATEWAY = "linkage_gateway"  # 中間サーバー / the information-provision network's gateway


# a system account holds exactly its kind's roles; no staff member ever holds one of them
SYSTEM_ROLES: dict[SystemKind, frozenset[Role]] = {
    SystemKind.PORTAL: frozenset({Role.PORTAL}),
    SystemKind.LINKAGE_GATEWAY: frozenset({Role.LINKAGE}),
}
SYSTEM_ONLY_ROLES: frozenset[Role] = frozenset(r for roles in SYSTEM_ROLES.values() for r in roles)
STAFF_ROLES: tuple[Role, ...] = tuple(r for r in Role if r not in SYSTEM_ONLY_ROLES)
# actions no staff role may be given: reading the person's own portal is the person's, not the counter's
SYSTEM_ONLY_ACTIONS: frozenset[Action] = frozenset({Action.READ_PORTAL})

_CODE = re.compile(r"^[0-9]{6}$|^[A-Z0-9][A-Z0-9_-]{1,31}$")
_STAFF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def agency_code(value: str, field: str = "agency") -> str:
    """An agency code: a 6-digit 全国地方公共団体コード, or an upper-case identifier for other bodies.

    Refusals name ``field``, never the value: a number typed into the wrong field must not be echoed."""
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise InputError(
            f"{field} is not an agency code: use the 6-digit local government code (e.g. 131016) "
            "or an upper-case identifier (e.g. SC-TOKYO)",
            field=field,
        )
    return value


def staff_id(value: str, field: str = "staff") -> str:
    if not isinstance(value, str) or not _STAFF.fullmatch(value):
        raise InputError(f"{field} is not a staff id: letters, digits, '.', '_' or '-', at most 64", field=field)
    return value


E = TypeVar("E", bound=StrEnum)


def parse_enum(kind: type[E], value: str, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InputError(f"unknown {what}; expected one of: {allowed}", field=what) from None


# The calendar the ledger accepts at every edge (CLI, API, in-process callers): wide enough for any review date
# or audit period, and far from date.min/date.max, next to which adding a day or a time zone overflows.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def calendar_day(value: date, what: str) -> date:
    """``value`` if it lies in the ledger's calendar; otherwise an ``InputError`` naming ``what`` (never the
    value: whatever was typed there is not repeated)."""
    if not FIRST_DAY <= value <= LAST_DAY:
        raise InputError(f"{what} must be a date from {FIRST_DAY} to {LAST_DAY}")
    return value


def parse_day(text: str, what: str) -> date:
    """A ``YYYY-MM-DD`` date within the ledger's calendar, or an ``InputError`` naming ``what``."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{what} is not a date (YYYY-MM-DD)") from None
    return calendar_day(day, what)


def parse_moment(text: str, what: str) -> datetime:
    """An ISO 8601 instant *with* a UTC offset, within the ledger's calendar, as UTC; or an ``InputError``
    naming ``what``. A bare local time is refused rather than guessed (an auditor's "10:00" in JST and a
    server's in UTC are nine hours apart)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{what} is not an ISO 8601 time; write e.g. 2026-11-25T10:00:00+09:00 or 2026-11-25T01:00:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{what} has no UTC offset; add one (e.g. +09:00 for JST, Z for UTC)")
    calendar_day(moment.date(), what)  # far from the ends, so the conversion below cannot overflow
    return moment.astimezone(UTC)
