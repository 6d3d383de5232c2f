"""Time-based one-time codes (TOTP, RFC 6238) as a second factor, where the agency allows them.

Security keys are the primary second factor (municipal networks often bar phones); an agency whose staff cannot
use one may allow TOTP (:class:`SignInPolicy`, an administrator's recorded act). Each sign-in records the time
step it used, so one code cannot open two sessions. The secret sits in the event payload, which the log keeps
encrypted at rest like every payload.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import AuthError, StateConflict

__all__ = ["LOCK_AFTER", "LOCK_FOR", "OneTimeCodes", "SignInPolicy"]

LOCK_AFTER = 5  # wrong codes in a row …
LOCK_FOR = timedelta(minutes=15)  # … lock the codes this long: a six-digit code must not be guessable


class SignInPolicy(LedgerAggregate):
    """What an agency accepts at sign-in besides security keys (local: it is the agency's own rule)."""

    @staticmethod
    def id_for(agency_stream: UUID) -> UUID:
        return uuid5(agency_stream, "sign-in-policy")

    @event("Opened")
    def __init__(self, id: UUID, agency: str) -> None:
        self.agency = agency
        self.totp = False

    def allow_totp(self, by: str) -> None:
        if self.totp:
            raise StateConflict("one-time codes are already allowed at this agency")
        self._totp_allowed(by=by)

    @event("TotpAllowed")
    def _totp_allowed(self, by: str) -> None:
        self.totp = True

    def withdraw_totp(self, by: str) -> None:
        if not self.totp:
            raise StateConflict("one-time codes are not allowed at this agency")
        self._totp_withdrawn(by=by)

    @event("TotpWithdrawn")
    def _totp_withdrawn(self, by: str) -> None:
        self.totp = False


class OneTimeCodes(LedgerAggregate):
    """One staff member's TOTP secret and the last time step a sign-in used."""

    @staticmethod
    def id_for(staff_stream: UUID) -> UUID:
        return uuid5(staff_stream, "one-time-codes")

    @event("Registered")
    def __init__(self, id: UUID, agency: str, staff: str, secret: str, step: int) -> None:
        self.agency = agency
        self.staff = staff
        self.secret = secret
        self.step = step  # the step of the code that confirmed the registration: never good again
        self.active = True
        self.failures: list[str] = []  # times of the wrong codes since the last good one

    def check_not_locked(self, now: datetime) -> None:
        if len(self.failures) >= LOCK_AFTER and now < datetime.fromisoformat(self.failures[-1]) + LOCK_FOR:
            raise AuthError(
                f"{LOCK_AFTER} wrong one-time codes: locked for {int(LOCK_FOR.total_seconds()) // 60} minutes "
                "(an administrator can see the attempts in the audit report)"
            )

    def fail(self, now: datetime) -> None:
        self._failed(at=now.isoformat())

    @event("Failed")
    def _failed(self, at: str) -> None:
        self.failures = [*self.failures[-(LOCK_AFTER - 1) :], at]

    def reregister(self, secret: str, step: int) -> None:
        if self.active:
            raise StateConflict("a one-time code is already registered: remove it first")
        self._reregistered(secret=secret, step=step)

    @event("Reregistered")
    def _reregistered(self, secret: str, step: int) -> None:
        self.secret = secret
        self.step = max(self.step, step)
        self.active = True

    def use(self, step: int) -> None:
        if not self.active:
            raise AuthError("no one-time code is registered for this staff member")
        if step <= self.step:
            raise AuthError("that one-time code was already used; wait for the next one")
        self._used(step=step)

    @event("Used")
    def _used(self, step: int) -> None:
        self.step = step
        self.failures = []

    def remove(self, by: str) -> None:
        if not self.active:
            raise StateConflict("no one-time code is registered for this staff member")
        self._removed(by=by)

    @event("Removed")
    def _removed(self, by: str) -> None:
        self.active = False
