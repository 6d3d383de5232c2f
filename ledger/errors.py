"""The one exception tree of flagledger.

Everything the ledger raises on purpose derives from :class:`FlagLedgerError`; library and
infrastructure errors are wrapped (``raise ... from exc``) at the boundary where they occur.

    FlagLedgerError
    ├── ConfigurationError        data directory, keys or settings missing or wrong
    ├── InputError                malformed input (bad individual number, bad date, bad code)
    ├── NotFoundError             unknown subject, agency, staff member, request, case, key
    ├── PermissionDenied          the actor's role/agency does not allow the command
    ├── RuleViolation             a business rule refuses the command (nothing is changed)
    │   ├── SelfApprovalError     requester tries to approve or decide their own request
    │   └── StateConflict         command does not fit the current state (already approved, …)
    ├── IntegrityError            the log cannot be trusted
    │   ├── SignatureError        missing, malformed or forged signature
    │   ├── UntrustedKeyError     unknown, not-yet-valid, expired or revoked key
    │   ├── ChainError            a stream's hash chain is broken (edit, delete, reorder)
    │   ├── CheckpointFork        a peer's checkpoint does not extend the last one held from it
    │   └── KeyEventError         a key-registry event of the log cannot be applied (:class:`KeyProblem`)
    ├── AuthError                 the API caller is not authenticated (HTTP 401)
    ├── BrokerUnavailable         the Kafka broker cannot be reached; nothing local is lost, retried
    └── StorageError              the database failed (wraps the driver's error; :func:`is_disk_full`)

Every ``code`` any flagledger error or ingest outcome carries is a constant of :class:`Code`: the values are
an interface (API bodies, CLI messages, parked rows, incident reports, tests), so they are spelled once here.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "AuthError",
    "BrokerUnavailable",
    "ChainError",
    "CheckpointFork",
    "Code",
    "ConfigurationError",
    "FlagLedgerError",
    "HubMisbehaviour",
    "InputError",
    "IntegrityError",
    "KeyEventError",
    "KeyProblem",
    "NotFoundError",
    "PermissionDenied",
    "RuleViolation",
    "SelfApprovalError",
    "SignatureError",
    "StateConflict",
    "StorageError",
    "UntrustedKeyError",
    "is_disk_full",
]


class Code:
    """The stable machine-readable reasons (``FlagLedgerError.code``, ``Outcome.code`` of ingest)."""

    # the exception tree's defaults
    ERROR: Final = "error"
    CONFIGURATION: Final = "configuration"
    INVALID_INPUT: Final = "invalid_input"
    NOT_FOUND: Final = "not_found"
    FORBIDDEN: Final = "forbidden"
    RULE_VIOLATION: Final = "rule_violation"
    FOUR_EYES: Final = "four_eyes"
    CONFLICT: Final = "conflict"
    INTEGRITY: Final = "integrity"
    BAD_SIGNATURE: Final = "bad_signature"
    UNTRUSTED_KEY: Final = "untrusted_key"
    BROKEN_CHAIN: Final = "broken_chain"
    CHECKPOINT_FORK: Final = "checkpoint_fork"
    BAD_KEY_EVENT: Final = "bad_key_event"
    UNAUTHENTICATED: Final = "unauthenticated"
    BROKER_UNAVAILABLE: Final = "broker_unavailable"
    # an HTTP request the server did not start because SIGTERM came first (503, Retry-After)
    STOPPING: Final = "stopping"
    STORAGE: Final = "storage"
    # storage
    DISK_FULL: Final = "disk_full"
    CONCURRENT_CHANGE: Final = "concurrent_change"
    HEAD_MISSING: Final = "head_missing"
    HEAD_CORRUPT: Final = "head_corrupt"
    # envelopes, payloads and keys
    MALFORMED: Final = "malformed"
    SCHEMA: Final = "schema"
    OVERSIZE: Final = "oversize"
    TRUNCATED: Final = "truncated"
    UNDECRYPTABLE: Final = "undecryptable"
    OLD_ENVELOPE: Final = "old_envelope"
    NEWER_ENVELOPE: Final = "newer_envelope"
    NEWER_SCHEMA: Final = "newer_schema"
    UNKNOWN_KEY: Final = "unknown_key"
    KEY_NOT_YET_VALID: Final = "key_not_yet_valid"
    KEY_EXPIRED: Final = "key_expired"
    REVOKED_KEY: Final = "revoked_key"
    # ingest of a peer's events
    GAP: Final = "gap"
    FORK: Final = "fork"
    AGENCY_HELD: Final = "agency_held"
    FORGED_OWN: Final = "forged_own"
    FOREIGN_WRITER: Final = "foreign_writer"
    REVOKED_KEY_LATE: Final = "revoked_key_late"
    # identity links (issue 18): a link that would join a number already linked (a chain or a cycle)
    LINK_CONFLICT: Final = "link_conflict"
    # issue 21: only the person's residence municipality links their numbers
    NOT_RESIDENCE: Final = "not_residence"
    # issue 21: a peer's number link in the old format (no named move) signed after the configured cut-over
    OLD_LINK_FORMAT: Final = "old_link_format"
    # checkpoints and proofs
    BAD_CHECKPOINT: Final = "bad_checkpoint"
    CHECKPOINT_MISMATCH: Final = "checkpoint_mismatch"
    BAD_PROOF: Final = "bad_proof"
    # people, agencies, permissions
    ROLE_NOT_PERMITTED: Final = "role_not_permitted"
    INACTIVE_STAFF: Final = "inactive_staff"
    UNKNOWN_AGENCY: Final = "unknown_agency"
    UNKNOWN_STAFF: Final = "unknown_staff"
    WRONG_AGENCY: Final = "wrong_agency"
    FOREIGN_AGENCY: Final = "foreign_agency"
    STALE_PROPOSAL: Final = "stale_proposal"
    # separation of duties (ledger/domain/duties.py, role_grants.py)
    ROLE_CONFLICT: Final = "role_conflict"
    GRANT_CLOSED: Final = "grant_closed"
    BREAK_GLASS_REFUSED: Final = "break_glass_refused"
    TOKEN_SCOPE: Final = "token_scope"
    SYSTEM_ONLY: Final = "system_only"  # only a system account of the right kind (the portal) may do this
    STAFF_ONLY: Final = "staff_only"  # a system account asked for a staff member's view or act
    SYSTEM_ROLE: Final = "system_role"  # a staff member was to get a system kind's role or action
    HOLDERS_WITHHELD: Final = "holders_withheld"  # who protects a person is not shown to other agencies
    # staff credentials and the signatures staff make on their own acts (docs/staff-signing.md)
    STAFF_SIGNATURE: Final = "staff_signature"
    STAFF_SIGNATURE_REQUIRED: Final = "staff_signature_required"
    STAFF_ROLE: Final = "staff_role"  # a flag act by someone the roster does not give that role
    BAD_ENROLMENT_CODE: Final = "bad_enrolment_code"
    NO_CREDENTIAL: Final = "no_credential"
    WRONG_PASSWORD: Final = "wrong_password"
    LOCKED_OUT: Final = "locked_out"
    # command-line sessions (ledger/cli/session.py, docs/staff-signing.md)
    NOT_SIGNED_IN: Final = "not_signed_in"
    SESSION_ENDED: Final = "session_ended"
    SESSION_MISMATCH: Final = "session_mismatch"
    CSRF: Final = "csrf"
    # sealed linkage messages (issue 19, docs/linkage.md)
    SEALED_MESSAGE: Final = "sealed_message"  # does not open: another recipient's, its header changed, bad padding
    MISADDRESSED: Final = "misaddressed"  # its routing header names another recipient than the one opening it
    WRONG_ROUTE: Final = "wrong_route"  # an agency or the portal may send only to the hub
    NOT_LEADER: Final = "not_leader"  # a hub process without the leader lease (a standby) does not sequence
    CARD_REVOKED: Final = "card_revoked"  # the portal refuses a card whose number was replaced
    PROXY_REFUSED: Final = "proxy_refused"  # the portal refuses a proxy's or guardian's view while a flag applies
    # card sign-in at the portal over HTTP (ledger/portal/cards.py, sign_ins.py)
    CARD_CERTIFICATE: Final = "card_certificate"  # malformed, forged, or made for another portal's key
    CARD_ISSUER_UNKNOWN: Final = "card_issuer_unknown"  # a certificate from an issuer the portal does not trust
    CARD_EXPIRED: Final = "card_expired"  # the certificate is not valid now
    CARD_SIGNATURE: Final = "card_signature"  # the card's signature over the challenge does not verify
    CHALLENGE_EXPIRED: Final = "challenge_expired"  # the sign-in challenge is past its expiry
    CHALLENGE_UNKNOWN: Final = "challenge_unknown"  # never issued, or used already (single use)
    CLEAR_RECORD: Final = "clear_record"  # the hub files provision records sealed to the portal only
    # an answer to a request the hub marked "staff" without a four-eyes decision on the holders' advice
    STAFF_DECISION_REQUIRED: Final = "staff_decision_required"
    # an accountable hub (issue 20, docs/accountable-hub.md): what providers, holders and witnesses catch
    STALE_MAP: Final = "stale_map"  # a routing decision cites a map head older than the newest one seen
    FLAG_IGNORED: Final = "flag_ignored"  # the hub said "answer automatically" about a person its map flags
    FLAG_DROPPED: Final = "flag_dropped"  # a holder's flag is missing from a map head the hub signed
    HUB_FORK: Final = "hub_fork"  # two signed hub heads that cannot both be true (one sequence, or a log that forks)
    HUB_ROLLBACK: Final = "hub_rollback"  # the hub announced an older head after a newer one
    HEAD_SKIPPED: Final = "head_skipped"  # a party was shown hub head i + k (k > 1) after head i: heads withheld
    HEAD_UNCOSIGNED: Final = "head_uncosigned"  # a head no witness cosigned within the configured time
    CHANGE_UNSEEN: Final = "change_unseen"  # a holder's flag change not shown in a (cosigned) head by its deadline
    # the hub answered a registration with no valid VRF proof of the person's map key for the number registered
    BAD_PERSON_KEY: Final = "bad_person_key"
    CHECKPOINT_ROLLBACK: Final = "checkpoint_rollback"  # an agency showed a witness a smaller log than before
    # a protected person's year (issue 21, docs/year.md)
    HANDOVER_PENDING: Final = "handover_pending"  # the new municipality does not hold yet: a named risk is needed
    # an erasure of a person the hub asked this municipality to take over (the request would be erased with it)
    HANDOVER_OPEN: Final = "handover_open"
    LAST_HOLDER: Final = "last_holder"  # the release would leave no holder anywhere: a second approval is needed
    GUARDIAN_BARRED: Final = "guardian_barred"  # a guardian or proxy barred from acting for a protected person
    # the law catalogue (issue 21, docs/bodies.md): a query beyond its legal basis
    UNKNOWN_LEGAL_BASIS: Final = "unknown_legal_basis"  # the item is not in the catalogue
    PROCEDURE_NOT_IN_BASIS: Final = "procedure_not_in_basis"  # the item is for another procedure
    INFO_KIND_NOT_PERMITTED: Final = "info_kind_not_permitted"  # the item does not permit this information kind
    QUERIER_NOT_IN_BASIS: Final = "querier_not_in_basis"  # the item is asked by another kind of agency
    PROVIDER_NOT_IN_BASIS: Final = "provider_not_in_basis"  # the item is provided by another kind of agency
    KIND_NOT_PERMITTED: Final = "kind_not_permitted"  # the agency's kind never does this (the police sets no flag)
    # other channels (issue 21, docs/channels.md)
    NOT_ENTITLED: Final = "not_entitled"  # a disclosure or printout asked by neither the person nor their proxy
    # per-subject data keys and erasure (issue 22, docs/erasure.md)
    ERASED: Final = "erased"  # the event's data key was destroyed: its envelope verifies, its content is gone
    # the portal's delivery key announced with a serial below the one held (replayed), or two under one serial
    DELIVERY_REPLAYED: Final = "delivery_replayed"
    # a delivery-key notice reached a node whose linkage.portal entry names no delivery serial: nothing to tell a
    # replayed old notice from a new one, so none is taken until the entry is re-imported with its serial
    DELIVERY_UNPINNED: Final = "delivery_unpinned"


class FlagLedgerError(Exception):
    """Base of every error flagledger raises on purpose.

    ``code`` is a stable machine-readable reason (used by the CLI and API); the message is for people.
    """

    code: str = Code.ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigurationError(FlagLedgerError):
    code = Code.CONFIGURATION


class InputError(FlagLedgerError, ValueError):
    """``field`` names the offending input (the API's 422 ``fields``); the value itself is never echoed."""

    code = Code.INVALID_INPUT

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class NotFoundError(FlagLedgerError, LookupError):
    code = Code.NOT_FOUND


class PermissionDenied(FlagLedgerError):
    code = Code.FORBIDDEN


class RuleViolation(FlagLedgerError):
    code = Code.RULE_VIOLATION


class SelfApprovalError(RuleViolation):
    code = Code.FOUR_EYES


class StateConflict(RuleViolation):
    code = Code.CONFLICT


class IntegrityError(FlagLedgerError):
    code = Code.INTEGRITY


class SignatureError(IntegrityError):
    code = Code.BAD_SIGNATURE


class HubMisbehaviour(IntegrityError):
    """The hub signed something that shows it lied: ``evidence`` holds what it signed (heads, a decision, a
    proof), for an incident and for anyone to check again (docs/accountable-hub.md)."""

    code = Code.HUB_FORK

    def __init__(self, message: str, *, code: str | None = None, evidence: object = None) -> None:
        super().__init__(message, code=code)
        self.evidence = evidence


class UntrustedKeyError(IntegrityError):
    code = Code.UNTRUSTED_KEY


class ChainError(IntegrityError):
    code = Code.BROKEN_CHAIN


class StorageError(FlagLedgerError):
    code = Code.STORAGE


class CheckpointFork(IntegrityError):
    code = Code.CHECKPOINT_FORK


@dataclass(frozen=True)
class KeyProblem:
    """A key-registry event that could not be applied: where it is and why (for ``audit verify`` to name)."""

    position: int | None
    stream: str
    version: int
    topic: str
    reason: str
    code: str


class KeyEventError(IntegrityError):
    """A key-registry event of the log failed to verify or apply; the node cannot trust the keys after it."""

    code = Code.BAD_KEY_EVENT

    def __init__(self, problem: KeyProblem) -> None:
        where = f"position {problem.position}" if problem.position is not None else "an event"
        super().__init__(
            f"the key event at {where} ({problem.topic} v{problem.version} of stream {problem.stream}) cannot be "
            f"applied: {problem.reason}. Run `flagledger audit verify`",
            code=problem.code,
        )
        self.problem = problem

    @classmethod
    def at(cls, row: Any, exc: Exception) -> KeyEventError:
        code = exc.code if isinstance(exc, FlagLedgerError) else Code.MALFORMED
        return cls(
            KeyProblem(
                getattr(row, "id", None), str(row.originator_id), row.originator_version, str(row.topic), str(exc), code
            )
        )


class AuthError(FlagLedgerError):
    """The caller is not authenticated (HTTP 401): missing, malformed, forged, expired or revoked token."""

    code = Code.UNAUTHENTICATED


class BrokerUnavailable(FlagLedgerError):
    """The broker cannot be reached or refused a request; nothing local is lost, the loop retries."""

    code = Code.BROKER_UNAVAILABLE


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL, the primary result code (sqlite3.Error.sqlite_errorcode may be an extended one)
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or any error it wraps: ``__cause__``, ``__context__``, SQLAlchemy's ``orig``) says the
    filesystem is full: errno ENOSPC/EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100. Decided by
    those codes, never by the wording, which differs by driver, version and locale."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        sqlite_code = getattr(e, "sqlite_errorcode", None)
        if isinstance(sqlite_code, int) and sqlite_code & 0xFF == _SQLITE_FULL:
            return True
        if getattr(e, "sqlstate", None) == _PG_DISK_FULL or getattr(e, "pgcode", None) == _PG_DISK_FULL:
            return True
        orig = getattr(e, "orig", None)
        todo.extend((e.__cause__, e.__context__, orig if isinstance(orig, BaseException) else None))
    return False
