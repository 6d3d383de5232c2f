"""flagledger: the signed, event-sourced ledger of 不開示 / 自動応答不可 protection flags."""

from ledger.errors import (
    ChainError,
    ConfigurationError,
    FlagLedgerError,
    InputError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    SelfApprovalError,
    SignatureError,
    StateConflict,
    StorageError,
    UntrustedKeyError,
)

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
