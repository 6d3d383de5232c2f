"""Mynaportal proxy registrations (代理人) at the hub (issue 19): who may send them, and whom the page lets in.

A node in hub mode keeps its ``ProxyRegistration`` events in its own log; its bridge sends each registration and
cancellation here (``consumers.linkage_proxy_registrations``), naming the person and the proxy by the agency's
own codes. The hub keeps it by its person ids, so the page the portal receives lists the proxy by the portal's
code — translated here, the agency never learns it.

**Who may register** (threat: a peer agency — e.g. the municipality where the person lived with the
perpetrator — registering the perpetrator as proxy): an agency that *knows the person* — it registered the
person's number and the proxy's at the hub under its own codes (typed them: it dealt with the person) — and,
while a ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` applies to the person (``ledger.hub.routing.holdings``), only a
holder. The residence municipality is what the operations guide names; the hub does not know residence, so
"knows the person" is what it can check. A peer that never registered the person (or the proxy) is refused
(parked, ``not_found``), as is a non-holder while a flag applies (``wrong_agency``).

**Who may cancel** (threat: a peer agency cancelling a proxy the person chose, for no one's protection): the
agency that registered it, and an agency that *holds the person* — a ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` of
its applies to them now — whoever registered it: the victim's new municipality, protecting her, cancels the
perpetrator's proxy registered where they lived together (the authority table's ``ProxyRegistration.Cancelled``;
stricter here than "any agency", which a node that typed the number would always be). A peer that neither
registered it nor holds the person is parked (``wrong_agency``). A cancellation takes the proxy off under every
number of the person and of the proxy (a registration made under her old number, cancelled under her new one),
and one of a registration already cancelled, or never made, changes nothing the portal sees.

**The registering agency is told** (threat: the perpetrator at the registering municipality's counter, its staff
believing the proxy still in force): each other agency whose registration of the pair was in force is sent
``proxy_cancelled`` under its own codes as it registered them — not who cancelled, nor why — in the transaction
that files the cancellation (once: a replay is dropped by its id before anything is owed). Its node records the
registration cancelled (``ProxyRegistration.CancelledThroughHub``).

**What the page lists** (:func:`page_proxies`): the portal's codes (of each proxy's current number) of the proxies
registered now and, while a protection applies, also approved by every holder (``ledger.hub.proxy_approvals``).
The portal lets a proxy in only by their own card's code on that list (``ledger.portal.rules``): a perpetrator
signing in as "proxy" with their own card, unregistered, or with the victim's card, reads nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, NotFoundError, PermissionDenied
from ledger.hub.inbox import owe
from ledger.hub.log import Also, HubStore
from ledger.hub.proxy_approvals import approved_proxies
from ledger.hub.routing import holdings
from ledger.hub.tables import hub_proxy_registrations
from ledger.linkage.codes import persons_of
from ledger.linkage.messages import Message
from ledger.linkage.names import PORTAL, check_party
from ledger.linkage.proxy_registrations import ProxyCancelled, ProxyRegistrationMessage
from ledger.storage import storage_error

__all__ = ["Seal", "page_proxies", "register", "registered_by"]

Seal = Callable[[str, Message], tuple[str, bytes]]


def register(
    store: HubStore, agency: str, message: ProxyRegistrationMessage, also: Also = None, seal: Seal | None = None
) -> int:
    """Record ``agency``'s registration (or cancellation) of the proxy for the person; returns its sequence
    number. A ledger error (the message parked) from an agency that may not. ``seal``: a cancellation owes each
    other agency whose registration it ends a ``proxy_cancelled`` (None: no one is told)."""
    message.check()
    codes = store.codes
    person = codes.person(check_party(agency, "agency"), message.code)
    proxy = codes.person(agency, message.proxy_code)
    if person is None or proxy is None:
        raise NotFoundError(
            f"{agency} has registered no person under this code at the hub: it registers no proxy for them"
        )
    if message.action == "register":
        holders = holdings(store.engine, codes, person)
        if holders and agency not in holders:
            raise PermissionDenied(
                f"a protection applies to this person and {agency} holds none: only a holder registers a proxy now",
                code=Code.WRONG_AGENCY,
            )
    r = hub_proxy_registrations.c
    mine = (r.person.in_(persons_of(codes, person))) & (r.proxy.in_(persons_of(codes, proxy)))
    told: list[tuple[str, bytes]] = []
    if message.action == "cancel":
        _check_cancel(store, agency, person, mine)
        told = [] if seal is None else _told(store, agency, mine, seal)

    def write(conn: Connection, seq: int) -> None:
        for recipient, sealed in told:
            owe(conn, recipient, sealed)
        if message.action == "cancel":  # under every number of both: the registration may name an older one
            conn.execute(update(hub_proxy_registrations).where(mine).values(active=False, agency=agency, seq=seq))
        conn.execute(delete(hub_proxy_registrations).where((r.person == person) & (r.proxy == proxy)))
        row = {"person": person, "proxy": proxy, "agency": agency, "active": message.action == "register", "seq": seq}
        conn.execute(insert(hub_proxy_registrations).values(**row))
        if also is not None:
            also(conn, seq)

    return store.sequencer.append(lambda conn: None, write)  # an upsert: applied twice, the same row


def _check_cancel(store: HubStore, agency: str, person: str, pair: ColumnElement[bool]) -> None:
    """``agency`` may cancel the pair's registrations in force: it made them, or it holds the person now."""
    r = hub_proxy_registrations.c
    try:
        with store.engine.connect() as conn:
            by = {str(a) for a in conn.execute(select(r.agency).where(pair & r.active.is_(True))).scalars()}
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's proxy registrations", exc) from exc
    if by - {agency} and agency not in holdings(store.engine, store.codes, person):
        raise PermissionDenied(
            f"{agency} did not register this proxy and holds no protection on the person: it may not cancel it",
            code=Code.WRONG_AGENCY,
        )


def _told(store: HubStore, agency: str, pair: ColumnElement[bool], seal: Seal) -> list[tuple[str, bytes]]:
    """A ``proxy_cancelled`` for each other agency whose registration of the pair is in force, under its own codes
    for the person and the proxy as it registered them (it may have registered them under an older number)."""
    r = hub_proxy_registrations.c
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(r.agency, r.person, r.proxy).where(pair & r.active.is_(True) & (r.agency != agency))
            ).all()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's proxy registrations", exc) from exc
    told = []
    for by, person, proxy in sorted(rows):
        code, proxy_code = store.codes.codes(person).get(by), store.codes.codes(proxy).get(by)
        if code and proxy_code:  # (it registered under these codes: always bound)
            told.append(seal(by, ProxyCancelled(code, proxy_code)))
    return told


def _registered(store: HubStore, person: str) -> set[str]:
    """The portal's codes (of each proxy's current number) of the proxies registered now for ``person``."""
    codes = store.codes
    r = hub_proxy_registrations.c
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(r.proxy).where(r.person.in_(persons_of(codes, person)) & r.active.is_(True))
            ).scalars()
            proxies = {str(p) for p in rows}
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's proxy registrations", exc) from exc
    # the proxy's current number only: whoever holds the proxy's replaced card is not the proxy
    current = {q for p in proxies for q in persons_of(codes, p) if codes.next(q) is None}
    return {c for q in current if (c := codes.codes(q).get(PORTAL))}


def page_proxies(store: HubStore, person: str) -> tuple[str, ...]:
    """The portal's codes of the proxies who may read ``person``'s page: registered, and while a protection
    applies also approved by every holder."""
    registered = _registered(store, person)
    if registered and holdings(store.engine, store.codes, person):
        registered &= set(approved_proxies(store, person))
    return tuple(sorted(registered))


def registered_by(store: HubStore, proxies: set[str]) -> set[str]:
    """The persons with a registration naming one of ``proxies``: their pages change when a proxy signs in."""
    if not proxies:
        return set()
    r = hub_proxy_registrations.c
    try:
        with store.engine.connect() as conn:
            return {str(p) for p in conn.execute(select(r.person).where(r.proxy.in_(proxies))).scalars()}
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's proxy registrations", exc) from exc
