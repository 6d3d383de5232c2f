"""System accounts: callers that are programs (Mynaportal, the linkage gateway), not staff members.

A system account is its own kind of account (issue 18): enrolled by an administrator as a recorded act naming
its kind, holding exactly that kind's roles (:data:`ledger.domain.types.SYSTEM_ROLES`) and nothing else, with
its own credential (a random secret shown once; the ledger keeps only its argon2id hash). Staff members never
hold a system kind's role, so no counter clerk reads a person's portal records.

The events are local (never published): like staff, they say who works with this node, not about any person.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.lockout import FailureLimited
from ledger.errors import StateConflict

__all__ = ["SystemAccount"]


class SystemAccount(FailureLimited, LedgerAggregate):
    """Failed sign-ins (a wrong secret) are recorded and lock the account as a staff member's wrong passwords
    lock their credential (:mod:`ledger.domain.lockout`): five in a row, 15 minutes."""

    LOCKED_WHAT = "failed sign-ins with this account's secret"

    # ``id``: the agency's keyed id for the account (FlagLedger.ids.system_account; see ledger.log.stream_ids)
    @event("Enrolled")
    def __init__(
        self, id: UUID, agency: str, account: str, kind: str, roles: list[str], secret_hash: str, by: str
    ) -> None:
        self.agency = agency
        self.account = account
        self.kind = kind
        self.roles: list[str] = sorted(set(roles))
        self.secret_hash = secret_hash
        self.active = True
        self.failures = 0
        self.locked_until: str | None = None
        # what a system token names (``"sv"``): changed by a new secret and by deactivation only, never by a
        # failed or cleared sign-in (else one wrong guess would end the account's live tokens). It counts as the
        # aggregate's version did before sign-ins were recorded here, so tokens issued then stay valid
        self.credential_version = 1

    def replace_secret(self, secret_hash: str, by: str) -> None:
        if not self.active:
            raise StateConflict(f"system account {self.account} is deactivated")
        self._secret_replaced(secret_hash=secret_hash, by=by)

    @event("SecretReplaced")
    def _secret_replaced(self, secret_hash: str, by: str) -> None:
        self.secret_hash = secret_hash
        self.failures, self.locked_until = 0, None  # an administrator's new secret ends a lock
        self.credential_version += 1

    @event("SignInFailed")
    def _failed(self, failures: int, locked_until: str | None) -> None:
        self.failures, self.locked_until = failures, locked_until

    @event("FailuresCleared")
    def _reset(self) -> None:
        self.failures, self.locked_until = 0, None

    def deactivate(self, by: str) -> None:
        if not self.active:
            raise StateConflict(f"system account {self.account} is already deactivated")
        self._deactivated(by=by)

    @event("Deactivated")
    def _deactivated(self, by: str) -> None:
        self.active = False
        self.credential_version += 1
