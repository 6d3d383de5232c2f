"""A holder's approval of a named proxy at the hub (issue 19): writer authority, and what the portal's page lists.

**Who may approve**: an agency whose ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` applies to the person now
(``ledger.hub.routing.holdings``), naming the person and the proxy by its own codes (both registered by it). A
peer that holds nothing on the person — or names a code it never registered — is refused (parked): a forged
approval lets no one in. A revocation is taken from the holder while it holds, or from whoever approved.

**What the page lists** (:func:`approved_proxies`): while protected, the portal's codes (of the proxy's current
number) of the proxies that *every* holder protecting the person now has approved and not revoked — one holder
cannot let a proxy past another's flag. The portal learns the codes only: no holder, no agency.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, NotFoundError, PermissionDenied
from ledger.hub.log import Also, HubStore
from ledger.hub.routing import holdings
from ledger.hub.tables import hub_proxy_approvals
from ledger.linkage.codes import CodeMap, persons_of
from ledger.linkage.names import PORTAL, check_party
from ledger.linkage.proxy_approvals import ProxyApproval
from ledger.storage import storage_error

__all__ = ["approve", "approved_proxies", "proxied_by"]


def _rows(conn: Connection, persons: list[str]) -> list[tuple[str, str, str, bool]]:
    a = hub_proxy_approvals.c
    stmt = select(a.holder, a.person, a.proxy, a.approved).where(a.person.in_(persons))
    return [(str(h), str(p), str(q), bool(ok)) for h, p, q, ok in conn.execute(stmt)]


def approve(store: HubStore, agency: str, message: ProxyApproval, also: Also = None) -> int:
    """Record ``agency``'s approval (or revocation) of the proxy for the person; returns its sequence number."""
    message.check()
    codes = store.codes
    person = codes.person(check_party(agency, "agency"), message.code)
    proxy = codes.person(agency, message.proxy_code)
    if person is None or proxy is None:
        raise NotFoundError(f"{agency} has registered no person under this code at the hub: it approves nobody here")
    holds = agency in holdings(store.engine, codes, person)
    if message.action == "approve" and not holds:
        raise PermissionDenied(
            f"{agency} holds no protection on this person: only a holder approves a proxy", code=Code.WRONG_AGENCY
        )
    if not holds:
        try:
            with store.engine.connect() as conn:
                mine = any(h == agency and q == proxy for h, _, q, _ in _rows(conn, [person]))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's proxy approvals", exc) from exc
        if not mine:
            raise PermissionDenied(
                f"{agency} neither holds a protection on this person nor approved this proxy", code=Code.WRONG_AGENCY
            )
    a = hub_proxy_approvals.c

    def write(conn: Connection, seq: int) -> None:
        key = (a.holder == agency) & (a.person == person) & (a.proxy == proxy)
        conn.execute(delete(hub_proxy_approvals).where(key))
        approved = message.action == "approve"
        row = {"holder": agency, "person": person, "proxy": proxy, "approved": approved, "seq": seq}
        conn.execute(insert(hub_proxy_approvals).values(**row))
        if also is not None:
            also(conn, seq)

    return store.sequencer.append(lambda conn: None, write)  # an upsert: applied twice, the same row


def approved_proxies(store: HubStore, person: str) -> tuple[str, ...]:
    """The portal's codes of the proxies every current holder approved for ``person`` (empty if none holds)."""
    codes: CodeMap = store.codes
    holders = set(holdings(store.engine, codes, person))
    if not holders:
        return ()
    try:
        with store.engine.connect() as conn:
            rows = _rows(conn, persons_of(codes, person))
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's proxy approvals", exc) from exc
    by_holder: dict[str, set[str]] = {h: set() for h in holders}
    for holder, _, proxy, ok in rows:
        if ok and holder in by_holder:
            by_holder[holder].add(proxy)
    agreed = set.intersection(*by_holder.values())
    # the proxy's current number only: whoever holds the proxy's replaced card is not the proxy
    current = {q for p in agreed for q in persons_of(codes, p) if codes.next(q) is None}
    return tuple(sorted(c for q in current if (c := codes.codes(q).get(PORTAL))))


def proxied_by(store: HubStore, proxies: set[str]) -> set[str]:
    """The persons with an approval naming one of ``proxies``: their pages change when a proxy signs in."""
    if not proxies:
        return set()
    a = hub_proxy_approvals.c
    try:
        with store.engine.connect() as conn:
            return {str(p) for p in conn.execute(select(a.person).where(a.proxy.in_(proxies))).scalars()}
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's proxy approvals", exc) from exc
