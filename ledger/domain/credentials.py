"""A staff member's own credential (local: never leaves the node): the one-time enrolment code an
administrator issued (only its SHA-256 and expiry), then the password hash (argon2id), the staff key's
public half and its private half wrapped under a key derived from the password, and failed unlocks.

The hashing and wrapping are done by :mod:`ledger.app.credentials`; this aggregate records their results and
the rules: a code is used once and before it expires, five failed unlocks lock the credential for 15 minutes
(:mod:`ledger.domain.lockout`, the rule system accounts' secrets share).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.lockout import FailureLimited
from ledger.errors import AuthError, Code, StateConflict

__all__ = ["StaffCredential"]


class StaffCredential(FailureLimited, LedgerAggregate):
    LOCKED_WHAT = "wrong passwords"

    # ``id``: derived from the staff member's keyed stream id (ledger.log.stream_ids), so it names nobody
    @event("Opened")
    def __init__(self, id: UUID, agency: str, staff_id: str) -> None:
        self.agency = agency
        self.staff_id = staff_id
        self.code: dict[str, Any] | None = None  # the outstanding enrolment code (digest, expiry, issuer …)
        self.key_id: str | None = None
        self.public_hex: str | None = None
        self.password_hash: str | None = None
        self.wrapped: dict[str, Any] | None = None
        self.failures = 0
        self.locked_until: str | None = None

    def issue_code(self, issued: dict[str, Any]) -> None:
        self._code_issued(issued=issued)

    @event("CodeIssued")
    def _code_issued(self, issued: dict[str, Any]) -> None:
        self.code = issued

    def check_code(self, digest: str, now: datetime) -> dict[str, Any]:
        code = self.code
        if code is None or not hmac.compare_digest(str(code["code_digest"]), digest):
            raise AuthError("the enrolment code is not valid for this staff member", code=Code.BAD_ENROLMENT_CODE)
        if datetime.fromisoformat(code["expires_at"]) <= now:
            raise AuthError(
                "the enrolment code has expired: ask an administrator for a new one", code=Code.BAD_ENROLMENT_CODE
            )
        return code

    @event("Activated")
    def activate(self, key_id: str, public_hex: str, password_hash: str, wrapped: dict[str, Any]) -> None:
        self.key_id, self.public_hex = key_id, public_hex
        self.password_hash, self.wrapped = password_hash, wrapped
        self.code = None  # used: a code certifies one key
        self.failures, self.locked_until = 0, None

    @event("PasswordChanged")
    def change_password(self, password_hash: str, wrapped: dict[str, Any]) -> None:
        self.password_hash, self.wrapped = password_hash, wrapped

    def check_unlockable(self, now: datetime) -> None:
        if self.key_id is None or self.password_hash is None:
            raise AuthError(
                f"{self.staff_id} has no activated credential: activate the enrolment code first",
                code=Code.NO_CREDENTIAL,
            )
        self.check_not_locked(now)

    @event("UnlockFailed")
    def _failed(self, failures: int, locked_until: str | None) -> None:
        self.failures, self.locked_until = failures, locked_until

    @event("FailuresCleared")
    def _reset(self) -> None:
        self.failures, self.locked_until = 0, None

    def check_not_activated(self) -> None:
        if self.key_id is not None and self.code is None:
            raise StateConflict(f"{self.staff_id} already has an activated credential")
