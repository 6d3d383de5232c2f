"""The one rule for failed sign-ins, shared by every credential a caller proves itself with: a staff member's
password (:class:`ledger.domain.credentials.StaffCredential`) and a system account's secret
(:class:`ledger.domain.accounts.SystemAccount`). Five failures in a row lock the credential for 15 minutes,
even against the right secret; each failure and each clearing is an event of the credential's own stream, so
the lock survives a restart and the audit sees every attempt.

The aggregates keep their own event methods (``_failed`` and ``_reset``; their topics are part of the log);
this mixin decides what those events say.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ledger.errors import AuthError, Code

__all__ = ["LOCKOUT", "MAX_FAILURES", "FailureLimited"]

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


class FailureLimited:
    """Failed attempts and the lock they lead to (``failures``, ``locked_until``: set by the creation event)."""

    failures: int
    locked_until: str | None
    LOCKED_WHAT = "failed sign-ins"  # how the refusal names the failures ("wrong passwords", …)

    def check_not_locked(self, now: datetime) -> None:
        if self.locked_until is not None and datetime.fromisoformat(self.locked_until) > now:
            raise AuthError(f"too many {self.LOCKED_WHAT}: locked until {self.locked_until}", code=Code.LOCKED_OUT)

    def fail(self, now: datetime) -> None:
        failures = 1 if self.locked_until is not None else self.failures + 1
        until = (now + LOCKOUT).isoformat() if failures >= MAX_FAILURES else None
        self._failed(failures=0 if until else failures, locked_until=until)

    def succeed(self) -> None:
        if self.failures or self.locked_until:
            self._reset()

    def _failed(self, failures: int, locked_until: str | None) -> None:
        raise NotImplementedError  # each aggregate's own event method

    def _reset(self) -> None:
        raise NotImplementedError
