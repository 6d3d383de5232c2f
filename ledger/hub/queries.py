"""Routing a query and relaying its answer, the hub loop's part (a mixin of :class:`~ledger.hub.service.HubService`).

A query from its verified querier is translated to the provider's code for the person, checked for holdings
(``ledger.hub.routing``: a holder's flag makes it a staff answer, each holder consulted), signed with a routing
decision under a head of the flag map when the hub runs one, and owed to the provider with the request row, in
one sequenced write; the same query sent again under another event id is routed once. A provider's answer is
relayed to the querier under the querier's own request id, only by the provider asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.domain.law import check_query
from ledger.domain.types import AgencyKind
from ledger.errors import Code, InputError, NotFoundError, RuleViolation
from ledger.hub import txn
from ledger.hub.consultations import HubConsultations
from ledger.hub.heads import MapHeads
from ledger.hub.log import HubStore
from ledger.hub.routing import holdings
from ledger.hub.tables import hub_requests
from ledger.linkage.codes import translate
from ledger.linkage.cosigned_heads import encode_cosigs
from ledger.linkage.directory import Directory
from ledger.linkage.hub_wire import encode_routing
from ledger.linkage.map_messages import ProvenQuery
from ledger.linkage.messages import AnswerMessage, Consultation, Message, QueryMessage, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import Opened
from ledger.storage import storage_error

__all__ = ["QueryRouting"]

Owed = list[tuple[str, bytes]]


class QueryRouting:
    """What routing needs of the service (set by ``HubService.__init__``)."""

    store: HubStore
    consults: HubConsultations
    heads: MapHeads | None
    directory: Directory
    now: Callable[[], datetime]

    def _seal(self, recipient: str, message: Message) -> tuple[str, bytes]:
        raise NotImplementedError

    def _settle_map(self) -> None:
        raise NotImplementedError

    def _kind_of(self, party: str) -> AgencyKind | None:
        raise NotImplementedError

    def _known_kind(self, party: str, code: str) -> AgencyKind:
        kind = self._kind_of(party)
        if kind is None:
            self.directory.sealing_key(party)  # a party the hub does not know at all is unknown, not kindless
            raise RuleViolation(
                f"the hub's directory names no kind for {party}: its administrator imports the agency's entry "
                "again with its kind (`flagledger linkage directory import FILE --kind KIND`)",
                code=code,
            )
        return kind

    def _commit(
        self,
        opened: Opened,
        owes: Owed,
        write: Callable[[Connection, int], object] | None = None,
        done: Callable[[Connection], int | None] | None = None,
    ) -> int:
        raise NotImplementedError

    def _query(self, opened: Opened, q: QueryMessage) -> None:
        querier, provider = opened.sender, q.provider
        if provider in (HUB, PORTAL, querier):
            raise InputError("a query goes to another agency", code=Code.WRONG_ROUTE, field="provider")
        # the network checks the legal basis and the querier's and the provider's kinds as the directory names them
        # (parked if not, before anything is relayed: a peer of another kind is neither asked for nor answers what
        # the law gives the row's provider); an agency imported without a kind neither asks nor is asked, as it
        # neither reports moves nor files body requests — its kind is what the law's rows are checked against
        kind = self._known_kind(querier, Code.QUERIER_NOT_IN_BASIS)
        provider_kind = self._known_kind(provider, Code.PROVIDER_NOT_IN_BASIS)
        check_query(q.legal_item, q.procedure, q.info_kind, kind.value, provider_kind.value)
        person = self.store.codes.person(querier, q.code)
        if person is None:
            raise NotFoundError(f"{querier} has registered no person under this code at the hub")
        provider_codes = translate(self.store.codes, querier, q.code, provider)
        held = holdings(self.store.engine, self.store.codes, person)
        request_id = uuid.uuid4().hex
        routed: RoutedQuery = RoutedQuery(
            request_id,
            querier,
            provider_codes[-1] if provider_codes else "",  # under the person's newest number the provider knows
            q.procedure,
            q.legal_item,
            q.info_kind,
            "staff" if held else "auto",
        )
        if self.heads is not None and provider_codes:
            routed = self._proven(routed, provider, provider_codes[-1])
        owes = [self._seal(provider, routed)]
        for holder, code in sorted(held.items()):  # the liaison: the provider's request, never the querier
            consult = Consultation(request_id, provider, code, q.procedure, q.legal_item, q.info_kind)
            owes.append(self._seal(holder, consult))
        row = {
            "request_id": request_id,
            "querier": querier,
            "querier_request": q.request_id,
            "provider": provider,
            "person": person,
            "staff": bool(held),
        }

        def write(conn: Connection, seq: int) -> None:
            conn.execute(insert(hub_requests).values(seq=seq, **row))
            self.consults.consult(conn, request_id, sorted(held))

        def routed_before(conn: Connection) -> int | None:
            # the same query sent again under another event id (a querier that died between its send and
            # recording it sent): routed once — the provider asked twice would be a second request, and the
            # insert refused by the unique (querier, request) would stop the loop on this message for good
            r = hub_requests.c
            found = conn.execute(
                select(r.seq).where((r.querier == querier) & (r.querier_request == q.request_id))
            ).scalar()
            return None if found is None else int(found)

        self._commit(opened, owes, write, routed_before)

    def _answer(self, opened: Opened, a: AnswerMessage) -> None:
        r = hub_requests.c
        try:
            with txn.reading(self.store.engine) as conn:  # in the loop's poll: its connection
                found = conn.execute(
                    select(r.provider, r.querier, r.querier_request, r.staff).where(r.request_id == a.request_id)
                ).first()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's routed requests", exc) from exc
        if found is None or found.provider != opened.sender:
            # another agency's request is answered like an unknown one: a peer learns nothing by trying
            raise NotFoundError(f"{opened.sender} was asked no request {a.request_id} through the hub")
        if self.consults.needs_decision(found.staff, a.status):
            self.consults.refuse_plain(opened, a)  # raises: no automatic answer to a request marked staff
        relay = AnswerMessage(found.querier_request, a.status, a.data)
        self._commit(opened, [self._seal(found.querier, relay)])

    def _proven(self, routed: RoutedQuery, provider: str, code: str) -> ProvenQuery:
        """The routed query with the hub's signed decision, under a head of the map as it is now."""
        assert self.heads is not None
        self._settle_map()  # the changes filed earlier in this batch are in the head the decision cites
        person = self.store.codes.person(provider, code)
        if person is None:
            raise NotFoundError(f"{provider} has registered no person under this code at the hub")
        decision, head, proof = self.heads.route(request=routed.request_id, provider=provider, person=person)
        routing = encode_routing(decision, head, proof).hex()
        cosigs = encode_cosigs(self.heads.cosignatures(head.seq))
        return ProvenQuery(**asdict(routed) | {"answer": decision.action, "routing": routing, "cosigned": cosigs})
