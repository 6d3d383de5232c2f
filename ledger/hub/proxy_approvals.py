"""A holder's approval of a named proxy at the hub (issue 19): writer authority, and what the portal's page lists.

**Who may approve**: an agency whose ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` applies to the person now
(``ledger.hub.routing.holdings``), naming the person and the proxy by its own codes (both registered by it). A
peer that holds nothing on the person — or names a code it never registered — is refused (parked): a forged
approval lets no one in. A revocation is taken from the holder while it holds, or from whoever approved.

**Four eyes, checked here too** (:func:`check_four_eyes`): from an agency whose staff roster the hub keeps (its
node's bridge sends it), an approval or revocation must carry the two staff signatures its node recorded — the
proposal's by a requester, the approval's by an approver, two different people, each key certified in that roster
and not revoked, each holding the act's role there — over the statement the hub recomputes from the message
(``ledger.domain.staff_acts.proxy_approval_statement``). A message the holder's node sent with its linkage key
alone (a shell user at the holder) is refused. An agency that sent no roster (no staff signing yet) is taken on
its node's word.

**What the page lists** (:func:`approved_proxies`): while protected, the portal's codes (of the proxy's current
number) of the proxies that *every* holder protecting the person now has approved and not revoked — one holder
cannot let a proxy past another's flag. The portal learns the codes only: no holder, no agency.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger.domain.staff_acts import APPROVED, REQUESTED, proxy_approval_statement
from ledger.errors import Code, NotFoundError, PermissionDenied, SelfApprovalError
from ledger.hub.log import Also, HubStore
from ledger.hub.routing import holdings
from ledger.hub.tables import hub_proxy_approvals
from ledger.linkage.codes import CodeMap, persons_of
from ledger.linkage.names import PORTAL, check_party
from ledger.linkage.proxy_approvals import ProxyApproval, holder_subject
from ledger.log.staff_roles import act_role_problem
from ledger.log.staff_roster import RosterState, verify_act
from ledger.storage import storage_error

__all__ = ["approve", "approved_proxies", "check_four_eyes", "proxied_by"]


def check_four_eyes(rosters: Mapping[str, RosterState] | None, agency: str, message: ProxyApproval) -> None:
    """Refused (a ledger error) unless two different staff members of ``agency`` signed the message's proposal and
    approval as its roster requires; nothing to check for an agency the hub keeps no roster of."""
    roster = rosters.get(agency) if rosters is not None else None
    if roster is None or roster.agency != agency or not roster.keys:
        return  # no staff signing at this agency yet: its node's word, as before rosters travelled
    if not message.signed:
        raise PermissionDenied(
            f"{agency}'s staff sign their acts: a proxy approval without its two staff signatures is refused",
            code=Code.STAFF_SIGNATURE,
        )
    approval, withdrawal = str(uuid.UUID(message.approval)), message.action == "revoke"
    subject, proxy = holder_subject(message.code), holder_subject(message.proxy_code)
    staff: list[str] = []
    for act, signed in zip((REQUESTED, APPROVED), message.signatures(), strict=True):
        cert = roster.keys.get(signed["key_id"])
        if cert is None or cert.revoked:
            raise PermissionDenied(
                f"key {signed['key_id']} is no certified staff key of {agency}", code=Code.STAFF_SIGNATURE
            )
        why = verify_act(
            cert, proxy_approval_statement(agency, approval, withdrawal, act, subject, proxy, cert.staff), signed
        )
        if why is not None:
            raise PermissionDenied(f"a proxy approval's signature does not verify: {why}", code=Code.STAFF_SIGNATURE)
        lacking = act_role_problem(roster, act, cert.staff)
        if lacking is not None:
            raise PermissionDenied(f"proxy approval: {lacking}", code=Code.STAFF_ROLE)
        staff.append(cert.staff)
    if staff[0] == staff[1]:
        raise SelfApprovalError(f"{staff[0]} signed both the proposal and the approval: four eyes are two people")


def _rows(conn: Connection, persons: list[str]) -> list[tuple[str, str, str, bool]]:
    a = hub_proxy_approvals.c
    stmt = select(a.holder, a.person, a.proxy, a.approved).where(a.person.in_(persons))
    return [(str(h), str(p), str(q), bool(ok)) for h, p, q, ok in conn.execute(stmt)]


def approve(
    store: HubStore,
    agency: str,
    message: ProxyApproval,
    also: Also = None,
    rosters: Mapping[str, RosterState] | None = None,
) -> int:
    """Record ``agency``'s approval (or revocation) of the proxy for the person; returns its sequence number.
    ``rosters``: the agencies' staff rosters the hub keeps (:func:`check_four_eyes`)."""
    message.check()
    check_four_eyes(rosters, check_party(agency, "agency"), message)
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
