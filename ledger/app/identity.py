"""Identity commands: linking a person's old and new numbers, registering and cancelling proxies."""

from __future__ import annotations

from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.identity import ProxyRegistration, PseudonymLink
from ledger.domain.types import (
    Action,
)
from ledger.errors import (
    InputError,
    NotFoundError,
    StateConflict,
)


class IdentityCommands(LedgerAccess):
    """Number changes and proxy registrations."""

    # -- identity and proxies ----------------------------------------------------------------------
    def link_numbers(self, actor: Actor, old: str, new: str) -> tuple[str, str]:
        """Record an individual-number change; protection follows the person to the new pseudonym."""
        self.authorise(actor, Action.REQUEST_FLAG)
        o, n = self.subject(old), self.subject(new)
        if o == n:
            raise InputError("old and new numbers are the same")
        lid = self.ids.link(actor.agency, o)
        if self.find(PseudonymLink, lid) is not None:
            raise StateConflict("that old number is already linked to a new one")
        self.save_as(actor.agency, PseudonymLink(id=lid, agency=actor.agency, old=o, new=n, by=actor.staff))
        return o, n

    def register_proxy(self, actor: Actor, subject: str, proxy: str) -> UUID:
        self.authorise(actor, Action.OPEN_CASE)
        s, p = self.subject(subject), self.subject(proxy)
        rid = self.ids.proxy(actor.agency, s, p)
        existing = self.find_proxy_registration(s, p)
        if self.find(ProxyRegistration, rid) is not None or (existing is not None and existing.active):
            raise StateConflict("that proxy is already registered")
        reg = ProxyRegistration(id=rid, agency=actor.agency, subject=s, proxy=p, by=actor.staff)
        self.save_as(actor.agency, reg)
        return reg.id

    def find_proxy_registration(self, subject: str, proxy: str) -> ProxyRegistration | None:
        """The registration of ``proxy`` for ``subject`` by whichever agency made it (an active one first).

        A hosted agency's own is found by its keyed id; a peer's only through :attr:`proxy_index` (its id is
        keyed with the peer's secret), and what the index names is loaded from the verified log and must be
        a registration of exactly this pair, so an edited index row can point nowhere else."""
        s, p = self.subject(subject), self.subject(proxy)
        ids = [self.ids.proxy(a, s, p) for a in sorted(self.hosted)]
        if self.proxy_index is not None:
            ids += self.proxy_index.registrations(s, p)
        found = [
            r
            for r in (self.find(ProxyRegistration, i) for i in dict.fromkeys(ids))
            if r is not None and (r.subject, r.proxy) == (s, p)
        ]
        return next((r for r in found if r.active), found[0] if found else None)

    def cancel_proxy(self, actor: Actor, subject: str, proxy: str, reason: str = "") -> None:
        self.authorise(actor, Action.OPEN_CASE)
        s, p = self.subject(subject), self.subject(proxy)
        reg = self.find_proxy_registration(s, p)
        if reg is None:
            raise NotFoundError("unknown proxy registration")
        reg.cancel(by=actor.staff, reason=reason)
        self.save_as(actor.agency, reg)
