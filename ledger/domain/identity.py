"""Identifier changes, proxies and reads of protected details."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import StateConflict


class PseudonymLink(LedgerAggregate):
    """A number change: the old pseudonym now also names the person known by the new one."""

    SHARED = True

    # ``id``: the linking agency's keyed id for ``old`` (FlagLedger.ids.link; see ledger.log.stream_ids)
    @event("Linked")
    def __init__(self, id: UUID, agency: str, old: str, new: str, by: str) -> None:
        self.agency = agency
        self.old = old
        self.new = new


class ProxyRegistration(LedgerAggregate):
    """A registered Mynaportal proxy (代理人) for a subject."""

    SHARED = True

    # ``id``: the registering agency's keyed id for the pair (FlagLedger.ids.proxy; see ledger.log.stream_ids)
    @event("Registered")
    def __init__(self, id: UUID, agency: str, subject: str, proxy: str, by: str) -> None:
        self.agency = agency
        self.subject = subject
        self.proxy = proxy
        self.active = True

    def cancel(self, by: str, reason: str) -> None:
        if not self.active:
            raise StateConflict("the proxy registration is already cancelled")
        self._cancelled(by=by, reason=reason)

    @event("Cancelled")
    def _cancelled(self, by: str, reason: str) -> None:
        self.active = False


class AccessRecord(LedgerAggregate):
    """Every read of protected details (who, when, what, why) is itself a ledger event."""

    @event("ProtectedDetailsRead")
    def __init__(self, agency: str, staff: str, subject: str, what: str, purpose: str) -> None:
        self.agency = agency
        self.staff = staff
        self.subject = subject
        self.what = what
        self.purpose = purpose


class TokenGrant(LedgerAggregate):
    """An API token issued by an administrator: who may act as whom, with which roles, until when.

    The token itself is never stored (it is a bearer secret); its id lets an auditor tie a token seen in
    a proxy's log to the grant.
    """

    @event("Issued")
    def __init__(
        self,
        agency: str,
        issuer: str,
        staff: str,
        roles: list[str],
        expires_at: str,
        token_id: str,
        via: str = "administrator",  # absent from grants recorded before sign-in through an identity provider
    ) -> None:
        self.agency = agency
        self.issuer = issuer
        self.staff = staff
        self.roles = roles
        self.expires_at = expires_at
        self.token_id = token_id
        self.via = via


class ReportRecord(LedgerAggregate):
    """An auditor's period report was generated: it lists people, held requests and reads, so making it is
    itself a read of protected details, recorded before the report is written."""

    @event("Generated")
    def __init__(self, agency: str, staff: str, period_from: str, period_to: str, out_dir: str) -> None:
        self.agency = agency
        self.staff = staff
        self.period_from = period_from
        self.period_to = period_to
        self.out_dir = out_dir
