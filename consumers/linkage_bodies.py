"""Protection-body requests at an agency node in hub mode (issue 19, docs/bodies.md; the hub's side:
``ledger.hub.body_requests``).

**Out**: a body's ``BodyRequest.Sent`` goes to the hub as a ``body_request`` under the body's own code; a
municipality's ``BodyOutcome.Recorded`` about a request the hub routed to it goes as a ``body_outcome`` under
the hub's request id (its own outcomes of local requests stay local).

**In**: a ``routed_body_request`` is kept for the municipality's staff (``linkage_body_requests``: the body, its
own subject for the person, the flags, the reason); a ``body_outcome`` is kept for the body
(``linkage_body_outcomes``) if it answers one of the body's own requests — else it is parked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, insert, select

from ledger.app import FlagLedger
from ledger.domain.flags import BodyRequest
from ledger.errors import NotFoundError
from ledger.linkage.body_requests import BodyOutcomeMessage, BodyRequestMessage, RoutedBodyRequest
from ledger.linkage.messages import Message
from ledger.linkage.moves import join_flags
from ledger.runtime.linkage import code_of, subject_of
from ledger.runtime.tables import linkage_body_outcomes, linkage_body_requests

__all__ = ["OUTCOME", "SENT", "apply", "body_message"]

# topics are part of the stored data and never move (docs/design.md, event catalogue)
SENT, OUTCOME = "ledger.domain.flags:BodyRequest.Sent", "ledger.domain.bodies:BodyOutcome.Recorded"


def body_message(
    conn: Connection, agency: str, topic: str, event: Any, stream: UUID
) -> Iterator[tuple[tuple[str, ...], Message]]:
    """The message for this agency's body request, or its outcome of a request the hub routed here."""
    if event.agency != agency:
        return
    if topic == SENT:
        flags = join_flags(event.flags)
        yield (
            (event.subject,),
            BodyRequestMessage(stream.hex, code_of(event.subject), event.municipality, flags, event.reason),
        )
        return
    routed = event.body_request_id.hex
    found = conn.execute(select(linkage_body_requests.c.id).where(linkage_body_requests.c.id == routed)).first()
    if found is not None:
        message = BodyOutcomeMessage(
            routed, event.status, event.kind, event.flag_request_id.hex, join_flags(event.flags), event.on
        )
        yield (), message


def apply(app: FlagLedger, conn: Connection, m: RoutedBodyRequest | BodyOutcomeMessage, now: datetime) -> None:
    """Keep what the hub brought (in the transaction that records its event id as applied)."""
    if isinstance(m, RoutedBodyRequest):
        conn.execute(
            insert(linkage_body_requests).values(
                id=m.request_id,
                body=m.body,
                subject=subject_of(m.code),
                flags=m.flags,
                reason=m.reason,
                received_at=now.isoformat(),
            )
        )
        return
    mine = app.find(BodyRequest, UUID(m.request_id))
    if mine is None or mine.agency not in app.hosted:
        raise NotFoundError("an outcome of no protection request this body sent")
    conn.execute(
        insert(linkage_body_outcomes).values(
            body_request_id=m.request_id,
            municipality=mine.municipality,
            status=m.status,
            kind=m.request_kind,
            flag_request_id=m.flag_request,
            flags=m.flags,
            on=m.on,
        )
    )
