"""Protection bodies' side of a request (issue 21, docs/bodies.md): the outcome each act of the asked
municipality records, what a body's staff read of their own requests, and the municipality's inbox.

A body sees only its own requests: another body's request is answered exactly like an unknown one, and an
outcome counts only when the municipality the request was sent to recorded it (a peer cannot write the
outcome of a request it was not asked).

In linkage hub mode the requests and outcomes travel through the hub (:class:`HubBodyFacts`, wired by
``ledger.runtime.body_requests``): a municipality reads the requests the hub routed to it (the hub's id, the
body, its own subject), and a body the steps the hub relayed from the municipality it asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from ledger.app.credentials import StaffProof, WebAuthnProof
from ledger.app.handover import HandoverCommands
from ledger.app.values import Actor
from ledger.domain.base import LedgerAggregate
from ledger.domain.bodies import BodyOutcome, OutcomeStatus
from ledger.domain.flags import BodyRequest, FlagRequest
from ledger.domain.law import catalogue
from ledger.domain.types import Action, AgencyKind, RequestStatus
from ledger.errors import PermissionDenied

Proof = StaffProof | WebAuthnProof

# a request's status after an act → the outcome a body hears of (a partial approval: nothing yet)
_OUTCOME = {
    RequestStatus.APPROVED.value: OutcomeStatus.APPROVED,
    RequestStatus.REJECTED.value: OutcomeStatus.REJECTED,
    RequestStatus.EXECUTED.value: OutcomeStatus.EXECUTED,
}


class HubBodyFacts(Protocol):
    """What the linkage hub brought a node in hub mode about protection-body requests."""

    def find(self, body_request_id: UUID) -> Any:
        """A request the hub routed here (fields as a ``BodyRequest``'s), or None."""
        ...

    def received(self) -> list[Any]:
        """Every request the hub routed here."""
        ...

    def outcomes(self) -> list[Any]:
        """Every step the hub relayed of the answers to this body's own requests (fields as a ``BodyOutcome``'s)."""
        ...


class BodyCommands(HandoverCommands):
    """Outcomes of protection-body requests and the views of them; the law catalogue as a read."""

    hub_bodies: HubBodyFacts | None = None  # hub mode: requests and outcomes as the hub brought them

    def _body_request(self, body_request_id: UUID) -> Any:
        found = self.hub_bodies.find(body_request_id) if self.hub_bodies is not None else None
        return found if found is not None else super()._body_request(body_request_id)

    def _after_act(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        extra = super()._after_act(actor, request)
        if request.body_request_id is None:
            return extra
        if not request.approvals and request.status == RequestStatus.PENDING.value:
            status: OutcomeStatus | None = OutcomeStatus.REQUESTED
        else:
            status = _OUTCOME.get(request.status)
        if status is None:
            return extra
        body = self._body_request(request.body_request_id)
        outcome = BodyOutcome(
            agency=actor.agency,
            body=body.agency,
            body_request_id=body.id,
            flag_request_id=request.id,
            kind=request.kind,
            flags=request.flags,
            status=status.value,
            on=self.clock().isoformat(),
        )
        return [*extra, outcome]

    def _outcomes(self, bodies: Iterable[Any]) -> dict[UUID, list[Any]]:
        """The outcomes recorded on ``bodies`` (body requests): those the year's rows name for them
        (projections.year_rows), each loaded and verified; without the rows, every one in the log."""
        ids = {b.id for b in bodies}
        found: dict[UUID, list[Any]] = defaultdict(list)
        if self.year_rows is not None:
            loaded = (self.find(BodyOutcome, oid) for oid in self.year_rows.about("body_outcome", map(str, ids)))
            recorded: Iterable[Any] = (o for o in loaded if isinstance(o, BodyOutcome))
        else:
            recorded = self._year_aggregates(BodyOutcome, "Recorded")
        for o in recorded:
            if o.body_request_id in ids:
                found[o.body_request_id].append(o)
        for relayed in self.hub_bodies.outcomes() if self.hub_bodies is not None else []:
            found[relayed.body_request_id].append(relayed)
        return found

    def _summary(self, body: Any, outcomes: list[Any]) -> dict[str, Any]:
        # only the addressed municipality's word counts; within it, by time, then by the step's order
        steps = sorted(
            (o for o in outcomes if o.agency == body.municipality),
            key=lambda o: (o.on, list(OutcomeStatus).index(OutcomeStatus(o.status))),
        )
        return {
            "body_request_id": str(body.id),
            "body": body.agency,
            "municipality": body.municipality,
            "flags": list(body.flags),
            "reason": body.reason,
            "sent_by": body.sent_by,
            "sent_at": body.created_on.isoformat(),
            "status": steps[-1].status if steps else "sent",
            "outcomes": [
                {
                    "status": o.status,
                    "on": o.on,
                    "flag_request_id": str(o.flag_request_id),
                    "kind": o.kind,
                    "flags": list(o.flags),
                }
                for o in steps
            ],
        }

    def _body_agency(self, actor: Actor) -> None:
        agency, _ = self.authorise(actor, Action.SEND_BODY_REQUEST)
        if not AgencyKind(agency.kind).is_protection_body:
            raise PermissionDenied("only a protection body reads the outcome of protection requests")

    def body_requests(self, actor: Actor) -> list[dict[str, Any]]:
        """The requests ``actor``'s body sent, each with its outcome (``sent`` until the municipality acts)."""
        self._body_agency(actor)
        mine = list(self._year_items(BodyRequest, "Sent", "body_request", actor.agency))
        mine.sort(key=lambda b: b.created_on)
        outcomes = self._outcomes(mine)
        return [self._summary(b, outcomes.get(b.id, [])) for b in mine]

    def body_request_outcome(self, actor: Actor, body_request_id: UUID) -> dict[str, Any]:
        """One of ``actor``'s body's requests; another body's is answered like an unknown id."""
        self._body_agency(actor)
        body = self.find(BodyRequest, body_request_id)
        if body is None or body.agency != actor.agency:
            raise self._unknown("protection-body request", body_request_id)
        return self._summary(body, self._outcomes([body]).get(body.id, []))

    def _inbox(self, actor: Actor) -> list[Any]:
        self.authorise(actor, Action.REQUEST_FLAG)
        sent: list[Any] = list(self._year_items(BodyRequest, "Sent", "body_request", to_agency=actor.agency))
        if self.hub_bodies is not None:
            sent += [b for b in self.hub_bodies.received() if b.municipality == actor.agency]
        sent.sort(key=lambda b: b.created_on)
        return sent

    def body_inbox(self, actor: Actor) -> list[dict[str, Any]]:
        """The protection-body requests sent to ``actor``'s municipality, with what it has done about them."""
        inbox = self._inbox(actor)
        outcomes = self._outcomes(inbox)
        return [self._summary(b, outcomes.get(b.id, [])) for b in inbox]

    def body_inbox_people(self, actor: Actor) -> dict[str, str]:
        """Body request id → its person, for the municipality's console page (which shows them by its own
        宛名番号); the inbox itself, the API's and the command line's, names nobody."""
        return {str(b.id): b.subject for b in self._inbox(actor)}

    def _inbox_request(self, actor: Actor, body_request_id: UUID) -> Any:
        self.authorise(actor, Action.REQUEST_FLAG)
        body = self._body_request(body_request_id)
        if body.municipality != actor.agency:  # sent to another municipality: as if unknown
            raise self._unknown("protection-body request", body_request_id)
        return body

    def body_request_statement(self, actor: Actor, request_id: UUID, body_request_id: UUID) -> bytes:
        """What ``actor`` signs to answer body request ``body_request_id`` with flag request ``request_id``."""
        body = self._inbox_request(actor, body_request_id)
        return self.request_statement(
            actor, request_id, body.subject, list(body.flags), reason=body.reason, body_request_id=body.id
        )

    def answer_body_request(
        self, actor: Actor, body_request_id: UUID, *, proof: Proof | None = None, request_id: UUID | None = None
    ) -> UUID:
        """The municipality answers a body's request sent to it: a flag request for the flags the body asked,
        on its person, with the body request named — the body then reads ``requested``, and each later act of
        the chain (approval, rejection, execution) records its step. Signed by the requester as any request."""
        body = self._inbox_request(actor, body_request_id)
        return self.request_flags(
            actor,
            body.subject,
            list(body.flags),
            reason=body.reason,
            body_request_id=body.id,
            proof=proof,
            request_id=request_id if proof is not None else None,
        )

    def law_catalogue(self) -> dict[str, Any]:
        """The legal bases queries are checked against (public: the law, not a secret)."""
        return catalogue().as_dict()
