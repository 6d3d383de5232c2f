"""Protection-body requests at the hub (issue 19, docs/bodies.md, docs/linkage.md): a body's request routed to
the municipality it names, under that municipality's own code, and each step of its answer relayed back.

The rule per hop: the hub files a request in the name of its verified sender only, and only if the sender is a
protection body by its directory entry (support centre, child guidance centre, police: the kind the hub's
administrator accepted at import) — a municipality or a party of no known kind is refused (``wrong_agency``),
so a peer cannot make a municipality act on a "body's" request; it goes to another agency; it relays
an outcome only from the municipality the request was routed to — another agency's outcome is answered like
one for an unknown request (``not_found``), so a peer can neither mark someone else's request "executed" nor
learn by trying which requests exist. A municipality that has not registered the person yet is sent the
request when it does (as a handover: ``ledger.hub.moves``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, InputError, NotFoundError, PermissionDenied
from ledger.hub import txn
from ledger.hub.moves import KindOf, Write
from ledger.hub.tables import hub_body_requests
from ledger.linkage.body_requests import BodyOutcomeMessage, BodyRequestMessage, RoutedBodyRequest
from ledger.linkage.codes import CodeMap, codes_of, persons_of
from ledger.linkage.messages import Message
from ledger.linkage.names import HUB, PORTAL
from ledger.storage import storage_error

__all__ = ["HubBodyRequests"]

# built once: asked at every registration
_WAITING = select(
    hub_body_requests.c.request_id, hub_body_requests.c.body, hub_body_requests.c.flags, hub_body_requests.c.reason
).where(
    hub_body_requests.c.municipality == bindparam("holder"),
    hub_body_requests.c.delivered.is_(False),
    hub_body_requests.c.person.in_(bindparam("persons", expanding=True)),
)

Seal = Callable[[str, Message], tuple[str, bytes]]
Owed = list[tuple[str, bytes]]


class HubBodyRequests:
    def __init__(self, engine: Engine, codes: CodeMap, seal: Seal, kind_of: KindOf) -> None:
        self.engine, self.codes, self.seal, self.kind_of = engine, codes, seal, kind_of

    def _read(self, stmt: object, args: dict[str, object] | None = None) -> list[object]:
        try:
            with txn.reading(self.engine) as conn:
                return list(conn.execute(stmt, args))  # type: ignore[call-overload]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's body requests", exc) from exc

    def request(self, sender: str, m: BodyRequestMessage) -> tuple[Owed, Write | None]:
        """Route ``sender``'s request to the municipality it names (now, or when it registers the person)."""
        kind = self.kind_of(sender)
        if kind is None or not kind.is_protection_body:
            raise PermissionDenied(
                f"a protection request comes from a protection body; the hub's directory names {sender} "
                f"{kind or 'no kind'}",
                code=Code.WRONG_AGENCY,
            )
        if m.municipality in (HUB, PORTAL, sender):
            raise InputError("a protection request goes to another agency", code=Code.WRONG_ROUTE, field="municipality")
        person = self.codes.person(sender, m.code)
        if person is None:
            raise NotFoundError(f"{sender} has registered no person under this code at the hub")
        r = hub_body_requests.c
        if self._read(select(r.request_id).where(r.body == sender, r.body_request == m.request_id)):
            return [], None  # the same request under a fresh message id: routed once
        request_id = uuid.uuid4().hex
        theirs = codes_of(self.codes, m.municipality, person)
        owes: Owed = []
        if theirs:
            owes.append(self.seal(m.municipality, RoutedBodyRequest(request_id, sender, theirs[-1], m.flags, m.reason)))
        row = {
            "request_id": request_id,
            "body": sender,
            "body_request": m.request_id,
            "municipality": m.municipality,
            "person": person,
            "flags": m.flags,
            "reason": m.reason,
            "delivered": bool(owes),
        }
        return owes, lambda conn, seq: _exec(conn, insert(hub_body_requests).values(seq=seq, **row))

    def registered(self, holder: str, code: str, person: str) -> tuple[Owed, Write | None]:
        """A new registration: the requests waiting for this municipality to know the person."""
        r = hub_body_requests.c
        rows = self._read(_WAITING, {"holder": holder, "persons": persons_of(self.codes, person)})
        if not rows:
            return [], None
        owes = [self.seal(holder, RoutedBodyRequest(w.request_id, w.body, code, w.flags, w.reason)) for w in rows]  # type: ignore[attr-defined]
        ids = [w.request_id for w in rows]  # type: ignore[attr-defined]
        done = update(hub_body_requests).where(r.request_id.in_(ids)).values(delivered=True)
        return owes, lambda conn, seq: _exec(conn, done)

    def outcome(self, sender: str, m: BodyOutcomeMessage) -> Owed:
        """The step relayed to the body under its own request id; only from the municipality asked."""
        r = hub_body_requests.c
        found = self._read(select(r.municipality, r.body, r.body_request).where(r.request_id == m.request_id))
        if not found or found[0].municipality != sender:  # type: ignore[attr-defined]
            raise NotFoundError(f"{sender} was routed no protection request {m.request_id} through the hub")
        row = found[0]
        relay = BodyOutcomeMessage(row.body_request, m.status, m.request_kind, m.flag_request, m.flags, m.on)  # type: ignore[attr-defined]
        return [self.seal(row.body, relay)]  # type: ignore[attr-defined]


def _exec(conn: Connection, stmt: object) -> None:
    conn.execute(stmt)  # type: ignore[call-overload]
