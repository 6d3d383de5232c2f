"""System accounts (the portal, the linkage gateway): enrolled by an administrator, authenticated by their own
secret, acting only as their kind (:mod:`ledger.domain.accounts`)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.accounts import SystemAccount
from ledger.domain.agencies import Staff
from ledger.domain.types import (
    SYSTEM_ONLY_ROLES,
    SYSTEM_ROLES,
    Action,
    Role,
    SystemKind,
    parse_enum,
    staff_id,
)
from ledger.errors import AuthError, Code, NotFoundError, PermissionDenied, StateConflict

__all__ = ["SECRET_PREFIX", "VIA_SECRET", "SystemAccountCommands", "staff_role"]

SECRET_PREFIX = "fls1_"
VIA_SECRET = "account_secret"  # how a system account's sign-in is recorded (TokenGrant ``via``)
# argon2id with the library's defaults (RFC 9106's second recommendation): a stolen log gives no secret back
_HASHER = PasswordHasher()


def staff_role(value: str) -> Role:
    """A role a staff member may hold: any but a system kind's (``portal``, ``linkage``)."""
    role = parse_enum(Role, value, "role")
    if role in SYSTEM_ONLY_ROLES:
        raise PermissionDenied(
            f"role {role.value} belongs to system accounts only: enrol one with `flagledger system enroll`",
            code=Code.SYSTEM_ROLE,
        )
    return role


class SystemAccountCommands(LedgerAccess):
    """Enrol, re-key, deactivate and authenticate system accounts."""

    def enroll_system_account(self, actor: Actor, account: str, kind: str) -> str:
        """An administrator enrols ``account`` of ``kind``; returns its secret, shown this once (only the
        argon2id hash is recorded). The account holds exactly ``kind``'s roles, and no staff id of the
        agency may be the same (a name means one kind of account)."""
        self.authorise(actor, Action.ADMINISTER)
        staff_id(account, "account")
        parsed = parse_enum(SystemKind, kind, "kind")
        aid = self.ids.system_account(actor.agency, account)
        if self.find(SystemAccount, aid) is not None:
            raise StateConflict("that system account is already enrolled at this agency")
        if self.find(Staff, self.ids.staff(actor.agency, account)) is not None:
            raise StateConflict("a staff member of this agency has that id: choose another for the system account")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        self.save_as(
            actor.agency,
            SystemAccount(
                id=aid,
                agency=actor.agency,
                account=account,
                kind=parsed.value,
                roles=sorted(r.value for r in SYSTEM_ROLES[parsed]),
                secret_hash=_HASHER.hash(secret),
                by=actor.staff,
            ),
        )
        return secret

    def replace_system_secret(self, actor: Actor, account: str) -> str:
        """A new secret for ``account`` (the old one stops working at once); returned this once."""
        self.authorise(actor, Action.ADMINISTER)
        acc = self.system_account(actor.agency, account)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        acc.replace_secret(_HASHER.hash(secret), by=actor.staff)
        self.save_as(actor.agency, acc)
        return secret

    def deactivate_system_account(self, actor: Actor, account: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        acc = self.system_account(actor.agency, account)
        acc.deactivate(by=actor.staff)
        self.save_as(actor.agency, acc)

    def authenticate_system(self, agency: str, account: str, secret: str) -> SystemAccount:
        """The active system account whose secret this is; ``AuthError`` otherwise (one answer for an unknown
        account, a wrong secret and a deactivated one). Wrong secrets are recorded and lock the account like a
        staff member's wrong passwords (:meth:`limited_attempt`, ``locked_out`` while locked)."""
        refused = AuthError("system account credentials are not accepted")
        try:
            acc = self.system_account(agency, account)
        except NotFoundError:
            _HASHER.hash(secret)  # about the same time as a wrong secret: no probing for account names
            raise refused from None
        self.limited_attempt(agency, acc, lambda: _secret_matches(acc.secret_hash, secret), refused)
        if not acc.active:
            raise refused
        return acc

    def record_system_token_grant(
        self, account: Actor, roles: Sequence[str], expires_at: datetime, token_id: str
    ) -> UUID:
        """Record that a system account signed in with its secret (issuer: the account itself, ``via``:
        ``account_secret``), before the token is handed out; listed with every other grant in the audit
        report's ``tokens.csv``."""
        return self._record_grant(account, roles, expires_at, token_id, VIA_SECRET)


def _secret_matches(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
