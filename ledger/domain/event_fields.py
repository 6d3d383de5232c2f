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

from collections.abc import Mapping
from typing import Any

from ledger.domain import bounds
from ledger.domain.answers import CopyState, HoldReason, ManualKind
from ledger.domain.bodies import OutcomeStatus
from ledger.domain.bounds import Bound, check_text
from ledger.domain.cases import CompanionRelation
from ledger.domain.disclosures import REFERENCE, Channel
from ledger.domain.field_rules import (
    _UUID_TEXT,
    ACTOR,
    AGENCY,
    ARGON2,
    CODE,
    HASH,
    KEY_ID,
    PSEUDONYM,
    SIZE,
    STAFF,
    STAFF_OR_ACTOR,
    Rule,
    boolean,
    checklist,
    day,
    enum,
    hex_digits,
    integer,
    list_of,
    moment,
    optional,
    record,
    shaped,
    text,
    uuid,
)
from ledger.domain.guardians import GuardianRelation
from ledger.domain.identity import LINK_KINDS
from ledger.domain.incidents import IncidentKind
from ledger.domain.moves import MoveSource, RiskKind
from ledger.domain.terms import ADMINISTRATOR, APPROVER, REMINDER_DAYS
from ledger.domain.types import Action, AgencyKind, Applicant, Flag, Reason, RequestKind, Role, SystemKind
from ledger.errors import Code, InputError

__all__ = ["BY_EVENT", "BY_NAME", "Rule", "check_event", "event_key"]


ESCALATION = (APPROVER, ADMINISTRATOR)
BASE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


SIGNATURE = hex_digits(128)
# an act signed by a security key carries its WebAuthn assertion (ledger.log.webauthn_proof): the signature
# (DER ECDSA, Ed25519 or RSA-2048..4096, hex) and the authenticator and client data (base64url)
ASSERTION = {
    "authenticator_data": shaped(r"[A-Za-z0-9_-]{50,1364}", Bound(1364), "WebAuthn authenticator data"),
    "client_data": shaped(r"[A-Za-z0-9_-]{16,2048}", Bound(2048), "WebAuthn client data"),
}
ACT_SIGNATURE = shaped(r"[0-9a-f]{64,1024}", Bound(1024), "a signature (hex)")
STAFF_SIGNED = record({"key_id": KEY_ID, "signature": ACT_SIGNATURE, **ASSERTION}, frozenset(ASSERTION))
_ACT = record(
    {
        "act": enum(("requested", "approved", "rejected", "executed")),
        "staff": STAFF,
        "note": HASH,
        "key_id": KEY_ID,
        "signature": ACT_SIGNATURE,
        **ASSERTION,
    },
    frozenset(ASSERTION),
)
# ``provisional``: an emergency flag set by one designated person (0 approvals; docs/year.md)
EVIDENCE = record(
    {"approvals_required": integer(0, 5), "details": HASH, "acts": list_of(_ACT, 16), "provisional": boolean},
    frozenset({"provisional"}),
)
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
        # the root of a roster that records roles (docs/staff-signing.md, "Roles at peers"), and the
        # administrators named at set-up (`init --second-admin`), the only ones certified by one signature
        "roles": list_of(enum((Role.ADMINISTRATOR.value,)), 1),
        "set_up_administrators": list_of(STAFF, 2),
    },
    frozenset({"roles", "set_up_administrators"}),
)
CREDENTIAL = shaped(r"[A-Za-z0-9_-]{16,1364}", Bound(1364), "a WebAuthn credential id")
COSE_KEY = shaped(r"[A-Za-z0-9_-]{16,2048}", Bound(2048), "a COSE public key")
SECURITY_KEY_CERT = record(
    {
        "staff": STAFF,
        "key_id": KEY_ID,
        "credential": CREDENTIAL,
        "cose_key": COSE_KEY,
        "rp_id_hash": HASH,
        "certified_by": KEY_ID,
        "signature": SIGNATURE,
    }
)
# a prefecture's break-glass co-approval signed on its own node (ledger.log.co_approval.RECORDED)
CO_APPROVAL = record(
    {
        "prefecture": AGENCY,
        "staff": STAFF,
        "key_id": KEY_ID,
        "agency": AGENCY,
        "grant": shaped(_UUID_TEXT, Bound(36), "a grant id"),
        "digest": HASH,
        "note_digest": HASH,
        "at": moment,
        "signature": SIGNATURE,
    }
)
# an administrator's staff-key signature on a role grant (ledger.domain.staff_acts.role_statement), and the
# roster's certification of a role with them (ledger.log.staff_roster.RosterState._certify_role)
_ROSTER_ROLES = tuple(
    r.value for r in (Role.REQUESTER, Role.APPROVER, Role.OPERATOR, Role.REVIEWER, Role.ADMINISTRATOR)
)
ROLE_SIGNED = record({"staff": STAFF, "key_id": KEY_ID, "signature": SIGNATURE})
ROLE_CERT = record(
    {
        "staff": STAFF,
        "role": enum(_ROSTER_ROLES),
        "grant": shaped(_UUID_TEXT, Bound(36), "a grant id"),
        "proposed_by": STAFF,
        "proposal": ROLE_SIGNED,
        "approval": optional(ROLE_SIGNED),
        "co_approval": optional(CO_APPROVAL),
    }
)
# the fields a peer's event may lack: added after events of that type were first shared (old logs, old peers)
ABSENT_OK = frozenset({"evidence", "batched", "co_approval"})
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
    "credential": CREDENTIAL,
    "cose_key": COSE_KEY,
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
    "guardian": PSEUDONYM,
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
    # a number change's judged move (ledger/app/residence.py): a move's id, "" for none, None from before
    "residence_move": optional(shaped(f"(?:{_UUID_TEXT})?", Bound(36), "a move id or nothing")),
    "evidence": optional(EVIDENCE),
    "co_approval": optional(CO_APPROVAL),
    "cert": STAFF_CERT,
    "security_key": SECURITY_KEY_CERT,
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
    "StaffRoster.RoleCertified": {"certified": ROLE_CERT},
    "StaffRoster.RolesWithdrawn": {"roles": list_of(enum(_ROSTER_ROLES), len(_ROSTER_ROLES))},
    "Agency.Registered": {"kind": enum(AgencyKind)},
    # a system account's secret: only its argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash, ~100 characters)
    "SystemAccount.Enrolled": {"account": STAFF, "kind": enum(SystemKind), "secret_hash": ARGON2},
    "SystemAccount.SecretReplaced": {"secret_hash": ARGON2},
    "FlagRequest.Requested": {
        "kind": enum(RequestKind),
        "reason": enum(Reason),
        "review_date": optional(day),
        "approvals_required": integer(0, 5),  # 0: a provisional flag (docs/year.md)
        "provisional": boolean,
    },
    "FlagRequest.Escalated": {"to": enum(ESCALATION), "on": day},
    "ResidenceChange.Recorded": {
        "from_agency": optional(AGENCY),
        "to_agency": AGENCY,
        "moved_on": day,
        "source": enum(MoveSource),
        "recorded_by": STAFF,
    },
    "ReleaseDecision.Proposed": {"kind": enum(RiskKind), "risk": text(bounds.NOTE)},
    "SupportTerm.Applied": {"applied_on": day, "ends_on": day, "recorded_by": STAFF},
    "SupportTerm.ExtensionRequested": {"requested_on": day, "ends_on": day},
    "SupportTerm.Reminded": {"days": enum(tuple(str(d) for d in REMINDER_DAYS)), "on": day, "ends_on": day},
    "SupportTerm.Escalated": {"to": enum(ESCALATION), "on": day, "ends_on": day},
    "LinkRequest.Requested": {"kind": enum(LINK_KINDS)},
    "Protection.FlagsSet": {"reason": enum(Reason)},
    "BodyRequest.Sent": {"reason": enum(Reason)},
    "BodyOutcome.Recorded": {
        "body": AGENCY,
        "body_request_id": uuid,
        "flag_request_id": uuid,
        "kind": enum(RequestKind),
        "status": enum(OutcomeStatus),
        "on": moment,
    },
    "ProtectionCase.Opened": {"reason": enum(Reason)},
    "ProtectionCase.CompanionProposed": {"relation": enum(CompanionRelation)},
    "GuardianBar.Proposed": {"relation": enum(GuardianRelation)},
    "AgencyHold.Placed": {"code": CODE},
    "AgencyHold.Lifted": {"by": ACTOR},
    "Staff.RoleGranted": {"by": STAFF_OR_ACTOR},
    "RoleGrant.Proposed": {"at_enrolment": boolean, "signature": optional(ROLE_SIGNED)},
    "ProvisionRequest.ManuallyProvided": {"proposal_version": optional(integer(1, 2**31 - 1))},
    "ProvisionRequest.Refused": {"proposal_version": optional(integer(1, 2**31 - 1))},
    # a person's records handed out outside the portal (issue 21, ledger.domain.disclosures)
    "DisclosureRecord.Made": {
        "asked_by": PSEUDONYM,
        "access": enum(("self", "proxy")),
        "channel": enum(Channel),
        "shown": integer(0, 2**31 - 1),
        "withheld": integer(0, 2**31 - 1),
        "reference": text(REFERENCE),
    },
    # answers that need staff (issue 21, ledger.domain.answers)
    "ProvisionRequest.Held": {"batched": boolean},
    "ProvisionRequest.Released": {"batch": moment},
    "AnswerPolicy.BatchTimesChanged": {"times": list_of(shaped(r"[0-2][0-9]:[0-5][0-9]", Bound(5), "a time HH:MM"), 8)},
    "AnswerPolicy.DueDaysChanged": {"days": integer(1, 30)},
    "AnswerPolicy.ManualItemMarked": {"kind": enum(ManualKind), "value": text(bounds.NOTE)},
    "AnswerPolicy.ManualItemUnmarked": {"kind": enum(ManualKind), "value": text(bounds.NOTE)},
    "CopyNote.Opened": {"state": enum(CopyState)},
    "CopyNote.Changed": {"state": enum(CopyState)},
    "HeldFile.Opened": {"reason": enum(HoldReason), "received": day, "due": day},
    "HeldFile.Escalated": {"level": integer(1, 2), "to": enum(("approver", "administrator")), "on": day},
    "HeldFile.Closed": {"batch": moment},
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
    # erasure (issue 22): the data keys destroyed, by their random refs (ledger.log.datakeys)
    "ErasureRequest.Erased": {"key_refs": list_of(hex_digits(32), 64)},
    "ErasureNotice.Published": {"request_id": shaped(_UUID_TEXT, Bound(36), "an id")},
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
