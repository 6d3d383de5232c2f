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
    │   └── ChainError            a stream's hash chain is broken (edit, delete, reorder)
    └── StorageError              the database failed (wraps the driver's error)
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "ConfigurationError",
    "FlagLedgerError",
    "InputError",
    "IntegrityError",
    "NotFoundError",
    "PermissionDenied",
    "RuleViolation",
    "SelfApprovalError",
    "SignatureError",
    "StateConflict",
    "StorageError",
    "UntrustedKeyError",
]


class FlagLedgerError(Exception):
    """Base of every error flagledger raises on purpose.

    ``code`` is a stable machine-readable reason (used by the CLI and API); the message is for people.
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigurationError(FlagLedgerError):
    code = "configuration"


class InputError(FlagLedgerError, ValueError):
    """``field`` names the offending input (the API's 422 ``fields``); the value itself is never echoed."""

    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class NotFoundError(FlagLedgerError, LookupError):
    code = "not_found"


class PermissionDenied(FlagLedgerError):
    code = "forbidden"


class RuleViolation(FlagLedgerError):
    code = "rule_violation"


class SelfApprovalError(RuleViolation):
    code = "four_eyes"


class StateConflict(RuleViolation):
    code = "conflict"


class IntegrityError(FlagLedgerError):
    code = "integrity"


class SignatureError(IntegrityError):
    code = "bad_signature"


class UntrustedKeyError(IntegrityError):
    code = "untrusted_key"


class ChainError(IntegrityError):
    code = "broken_chain"


class StorageError(FlagLedgerError):
    code = "storage"
