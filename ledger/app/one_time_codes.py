"""TOTP second factor: the agency's policy, a staff member's registration and each sign-in's code."""

from __future__ import annotations

import pyotp

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.agencies import Agency
from ledger.domain.one_time_codes import OneTimeCodes, SignInPolicy
from ledger.domain.types import Action
from ledger.errors import AuthError, InputError, PermissionDenied

__all__ = ["OneTimeCodeCommands", "code_step"]

PERIOD = 30  # seconds per code (RFC 6238's default, what every authenticator app uses)


def code_step(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` is good for (this one, or one either side for clock drift), or None."""
    totp = pyotp.TOTP(secret, interval=PERIOD)
    here = int(now // PERIOD)
    for step in (here, here - 1, here + 1):
        if pyotp.utils.strings_equal(totp.at(step * PERIOD), code.strip()):
            return step
    return None


class OneTimeCodeCommands(LedgerAccess):
    def _policy(self, agency: str) -> SignInPolicy | None:
        return self.find(SignInPolicy, SignInPolicy.id_for(Agency.create_id(agency)))

    def totp_allowed(self, agency: str) -> bool:
        found = self._policy(agency)
        return found is not None and found.totp

    def set_totp_allowed(self, actor: Actor, allowed: bool) -> None:
        """An administrator allows (or withdraws) one-time codes as a second factor at their agency."""
        self.authorise(actor, Action.ADMINISTER)
        policy = self._policy(actor.agency) or SignInPolicy(
            id=SignInPolicy.id_for(Agency.create_id(actor.agency)), agency=actor.agency
        )
        if allowed:
            policy.allow_totp(by=actor.staff)
        else:
            policy.withdraw_totp(by=actor.staff)
        self.save_as(actor.agency, policy)

    def _codes_of(self, agency: str, staff: str) -> OneTimeCodes | None:
        found = self.find(OneTimeCodes, OneTimeCodes.id_for(self.ids.staff(agency, staff)))
        return found if found is not None and found.active else None

    def has_one_time_codes(self, agency: str, staff: str) -> bool:
        """Registered and, today, allowed at the agency (a withdrawn policy turns existing ones off)."""
        return self.totp_allowed(agency) and self._codes_of(agency, staff) is not None

    def register_one_time_codes(self, actor: Actor, secret: str, code: str) -> None:
        """``actor`` registers the secret their authenticator app holds, proving it with a current code."""
        self.permit(actor)
        if not self.totp_allowed(actor.agency):
            raise PermissionDenied("this agency does not allow one-time codes: use a security key")
        if self._codes_of(actor.agency, actor.staff) is not None:
            raise InputError("a one-time code is already registered: remove it first", field="code")
        step = code_step(secret, code, self.clock().timestamp())
        if step is None:
            raise InputError("the code does not match: check the time on the device and try the next code")
        sid = OneTimeCodes.id_for(self.ids.staff(actor.agency, actor.staff))
        codes = self.find(OneTimeCodes, sid)
        if codes is None:
            codes = OneTimeCodes(id=sid, agency=actor.agency, staff=actor.staff, secret=secret, step=step)
        else:  # registered once and removed since
            codes.reregister(secret, step)
        self.save_as(actor.agency, codes)

    def remove_one_time_codes(self, actor: Actor, staff: str) -> None:
        """The holder removes their own (a new phone), or an administrator removes a lost one."""
        if staff == actor.staff:
            self.permit(actor)
        else:
            self.authorise(actor, Action.ADMINISTER)
        codes = self._codes_of(actor.agency, staff)
        if codes is None:
            raise InputError("no one-time code is registered for this staff member", field="staff")
        codes.remove(by=actor.staff)
        self.save_as(actor.agency, codes)

    def use_one_time_code(self, actor: Actor, code: str) -> None:
        """A sign-in's second step: the code must be current and newer than the last one used (recorded)."""
        codes = self._codes_of(actor.agency, actor.staff)
        if codes is None or not self.totp_allowed(actor.agency):
            raise AuthError("no one-time code is registered for this staff member")
        now = self.clock()
        codes.check_not_locked(now)
        step = code_step(codes.secret, code, now.timestamp())
        if step is None or step <= codes.step:
            codes.fail(now)  # recorded: the lock and the audit both need it (a replayed code too)
            self.save_as(actor.agency, codes)
            if step is None:
                raise AuthError("the one-time code does not match")
            raise AuthError("that one-time code was already used; wait for the next one")
        codes.use(step)
        self.save_as(actor.agency, codes)
