"""What every field of every event may hold: the bounds of :mod:`ledger.domain.bounds`, per event field.

:func:`check_event` runs on every event this node saves (``FlagLedger.save``: a command with an oversize
field raises InputError and saves nothing) and on every event a peer sends (``consumers.ingest``: parked with
code ``oversize``, or ``schema`` for a field of the wrong type, shape, or one this release does not know).
A peer is trusted for nothing it writes: a field that fits no view column, a missing field a projection
reads, or an unknown one would otherwise stop the views of every node that applies it.

Rules are looked up by field name (:data:`BY_NAME`), then per event (:data:`BY_EVENT`) where one name means
two things (``reason`` is an enumeration on a flag and words on a rejection).
"""

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
from ledger.domain.identity import LINK_KINDS
from ledger.domain.incidents import IncidentKind
from ledger.domain.types import Action, AgencyKind, Applicant, Flag, Reason, RequestKind, Role, SystemKind
from ledger.errors import Code, InputError

__all__ = ["BY_EVENT", "BY_NAME", "Rule", "check_event", "event_key"]

Rule = Callable[[str, Any], None]

BASE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


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


SIGNATURE = hex_digits(128)
STAFF_SIGNED = record({"key_id": KEY_ID, "signature": SIGNATURE})
_ACT = record(
    {
        "act": enum(("requested", "approved", "rejected", "executed")),
        "staff": STAFF,
        "note": HASH,
        "key_id": KEY_ID,
        "signature": SIGNATURE,
    }
)
EVIDENCE = record({"approvals_required": integer(1, 5), "details": HASH, "acts": list_of(_ACT, 16)})
STAFF_CERT = record(
    {
        "staff": STAFF,
        "key_id": KEY_ID,
        "public_hex": hex_digits(64),
        "certifies": boolean,
        "code": shaped(r"[A-Za-z0-9_-]{16,64}", Bound(64), "an enrolment code"),
        "code_digest": HASH,
        "expires_at": moment,
        "issuer": STAFF,
        "issuer_key_id": optional(KEY_ID),
        "issuer_signature": optional(SIGNATURE),
        "possession": SIGNATURE,
    }
)
# the fields a peer's event may lack: added after events of that type were first shared (old logs, old peers)
ABSENT_OK = frozenset({"evidence"})
PEOPLE = 20  # persons named on one case (the API's limit too)

BY_NAME: dict[str, Rule] = {
    # agencies and staff
    "agency": AGENCY,
    "code": AGENCY,
    "querier": AGENCY,
    "municipality": AGENCY,
    "remote_agency": AGENCY,
    "held": AGENCY,
    "by_agency": AGENCY,
    "holders": list_of(AGENCY, 64),
    "by": STAFF,
    "requested_by": STAFF,
    "opened_by": STAFF,
    "sent_by": STAFF,
    "approved_by": STAFF,
    "proposed_by": STAFF,
    "staff": STAFF,
    "issuer": STAFF,
    "via": shaped(r"[a-z_]{1,24}", Bound(24), "how a session was granted"),
    # WebAuthn (ledger.domain.security_keys): base64url credential id (≤ 1023 bytes) and COSE public key
    "credential": shaped(r"[A-Za-z0-9_-]{16,1364}", Bound(1364), "a WebAuthn credential id"),
    "cose_key": shaped(r"[A-Za-z0-9_-]{16,2048}", Bound(2048), "a COSE public key"),
    "counter": integer(0, 2**32 - 1),
    # TOTP (ledger.domain.one_time_codes): a base32 secret and a 30-second time step
    "secret": shaped(r"[A-Z2-7]{16,64}", Bound(64), "a base32 TOTP secret"),
    "step": integer(0, 2**40),
    "at": moment,
    "staff_id": STAFF,
    "name": text(bounds.NAME),
    "role": enum(Role),
    "roles": list_of(enum(Role), len(Role)),
    "action": enum(Action),
    # people (always pseudonyms once inside)
    "subject": PSEUDONYM,
    "victim": PSEUDONYM,
    "old": PSEUDONYM,
    "new": PSEUDONYM,
    "proxy": PSEUDONYM,
    "perpetrators": list_of(PSEUDONYM, PEOPLE),
    "proxies_to_cancel": list_of(PSEUDONYM, PEOPLE),
    # words
    "notes": text(bounds.NOTE),
    "note": text(bounds.NOTE),
    "explanation": text(bounds.NOTE),
    "reason": text(bounds.NOTE),
    "purpose": text(bounds.PURPOSE),
    "what": text(bounds.WHAT),
    "procedure": text(bounds.PROCEDURE),
    "info_kind": text(bounds.INFO_KIND),
    "out_dir": text(bounds.PATH),
    # flags, requests, provision
    "flags": list_of(enum(Flag), len(Flag)),
    "applicant": enum(Applicant),
    "applicant_check": enum(Applicant),
    "decision": enum(("provide", "refuse")),
    "legal_item": integer(1, 200),
    "approvals_required": integer(1, 5),
    "second_change": boolean,
    "request_id": uuid,
    "case_id": optional(uuid),
    "body_request_id": optional(uuid),
    "review_date": day,
    "checklist": checklist,
    "items": checklist,
    # times
    "valid_from": moment,
    "valid_until": moment,
    "effective_from": moment,
    "expires_at": moment,
    "period_from": moment,
    "period_to": moment,
    "time": moment,
    # keys, tokens, checkpoints
    "key_id": KEY_ID,
    "public_hex": hex_digits(64),
    "token_id": hex_digits(16),
    "tree_size": SIZE,
    "prev_size": SIZE,
    "root": HASH,
    "prev_root": HASH,
    "signature": hex_digits(128),
    "consistency": list_of(HASH, 128),
    # staff credentials and signatures (ledger.domain.staff_acts, roster, credentials)
    "staff_signature": optional(STAFF_SIGNED),
    "evidence": optional(EVIDENCE),
    "cert": STAFF_CERT,
    "issued": record(
        {
            "code_digest": HASH,
            "expires_at": moment,
            "issuer": STAFF,
            "certifies": boolean,
            "issuer_key_id": optional(KEY_ID),
            "issuer_signature": optional(SIGNATURE),
        }
    ),
    "password_hash": text(Bound(300)),
    "wrapped": record(
        {"salt": hex_digits(32), "nonce": hex_digits(24), "ciphertext": hex_digits(96), "kdf": text(Bound(60))}
    ),
    "failures": integer(0, 100),
    "locked_until": optional(moment),
}

# "Class.Event" → field → rule, where the field's name alone does not say what it holds
BY_EVENT: dict[str, dict[str, Rule]] = {
    "StaffRoster.Opened": {"root": STAFF_CERT},
    "Agency.Registered": {"kind": enum(AgencyKind)},
    # a system account's secret: only its argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash, ~100 characters)
    "SystemAccount.Enrolled": {"account": STAFF, "kind": enum(SystemKind), "secret_hash": ARGON2},
    "SystemAccount.SecretReplaced": {"secret_hash": ARGON2},
    "FlagRequest.Requested": {"kind": enum(RequestKind), "reason": enum(Reason), "review_date": optional(day)},
    "LinkRequest.Requested": {"kind": enum(LINK_KINDS)},
    "Protection.FlagsSet": {"reason": enum(Reason)},
    "BodyRequest.Sent": {"reason": enum(Reason)},
    "ProtectionCase.Opened": {"reason": enum(Reason)},
    "AgencyHold.Placed": {"code": CODE},
    "AgencyHold.Lifted": {"by": ACTOR},
    "Staff.RoleGranted": {"by": STAFF_OR_ACTOR},
    "RoleGrant.Proposed": {"at_enrolment": boolean},
    "ProvisionRequest.ManuallyProvided": {"proposal_version": optional(integer(1, 2**31 - 1))},
    "ProvisionRequest.Refused": {"proposal_version": optional(integer(1, 2**31 - 1))},
    # local-only records of what a parked message claimed: its header fields are the sender's, kept scrubbed
    # and bounded (ledger.app.incidents.scrub), so they are words here, not the shapes a valid header would have
    "Incident.Raised": {
        "kind": enum(IncidentKind),
        "code": CODE,
        "message": HASH,
        "fingerprint": HASH,
        "origin": text(Bound(40)),
        "key_id": text(Bound(120)),
        "stream": text(Bound(36)),
        "stream_version": SIZE,
        "topic": text(Bound(200)),
        "event_id": text(Bound(64)),
        "stamped": text(Bound(40)),
        "owner": text(bounds.AGENCY_CODE),
        "subjects": list_of(PSEUDONYM, 1000),
        "claimed_subjects": list_of(PSEUDONYM, 1000),
        "parked_id": SIZE,
        "source": text(Bound(200)),
        "origin_held": boolean,
    },
    "Incident.Acknowledged": {"at": moment},
    "IncidentReport.Drafted": {
        "incidents": list_of(shaped(_UUID_TEXT, Bound(36), "an id"), 100_000),
        "subjects": list_of(PSEUDONYM, 100_000),
        "destination": text(bounds.PATH),
    },
    "RevokedKeyAcceptance.Proposed": {
        "digest": HASH,
        "parked_id": SIZE,
        "event_id": text(Bound(64)),
        "origin": text(Bound(40)),
        "key_id": text(Bound(120)),
        "stream": text(Bound(36)),
        "version": SIZE,
        "topic": text(Bound(200)),
        "proposed_by": STAFF,
    },
}


def event_key(cls: type) -> str:
    """``Protection.FlagsSet`` for the class of that event."""
    return cls.__qualname__


_RULES: dict[type, dict[str, Rule]] = {}  # event class → its fields' rules (a fact of this code: kept)


def _rules(cls: type) -> dict[str, Rule] | None:
    rules = _RULES.get(cls)
    if rules is None:
        import dataclasses

        if not dataclasses.is_dataclass(cls):
            return None
        special = BY_EVENT.get(event_key(cls), {})
        names = [f.name for f in dataclasses.fields(cls) if f.name not in BASE_FIELDS]
        if any(n not in special and n not in BY_NAME for n in names):
            return None
        rules = _RULES[cls] = {n: special.get(n) or BY_NAME[n] for n in names}
    return rules


def check_event(event: object, *, peer: bool = False) -> None:
    """Raise InputError naming the first field of ``event`` outside its rule (the value is never echoed).

    ``peer``: the event came from another agency, so its fields are whatever the sender put in the payload:
    every field the event class declares must be there and no other (code ``schema``). An event class
    without rules for every field is refused from a peer; saved locally, its text is held to
    :data:`bounds.NOTE` until rules are added (a test keeps the table complete).
    """
    cls = type(event)
    state: Mapping[str, Any] = event.__dict__
    rules = _RULES.get(cls) or _rules(cls)
    if rules is None:
        if peer:
            raise InputError(f"{event_key(cls)} has no field rules in this release", code=Code.SCHEMA)
        for field, value in state.items():
            if field not in BASE_FIELDS and isinstance(value, str):
                check_text(field, value, bounds.NOTE)
        return
    if peer:
        fields = state.keys() - BASE_FIELDS
        missing = sorted(rules.keys() - fields - ABSENT_OK)
        if missing:
            raise InputError(f"{event_key(cls)} lacks its field {missing[0]}", field=missing[0], code=Code.SCHEMA)
        if not fields <= rules.keys():  # the sender's own key names are not echoed either
            raise InputError(f"{event_key(cls)} has a field this release does not know", code=Code.SCHEMA)
    for field, rule in rules.items():
        rule(field, state.get(field))
