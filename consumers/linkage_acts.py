"""The node's bridge reads its committed log (``consumers.linkage_bridge``): which of this agency's events the hub
is told of, and as which messages (docs/linkage.md) — its flag changes, number links, unlinks and relinks, a
body's requests and outcomes, residence moves and last-holder warnings, proxy approvals and registrations,
erasures, and its provision records sealed to the portal. Each act names the people it needs registered first."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from consumers import linkage_bodies as bodies
from consumers import linkage_moves as moves
from consumers import linkage_proxies as proxies
from consumers import linkage_proxy_registrations as registrations
from consumers import linkage_wire as wire
from consumers.linkage_seen import stamp_at
from consumers.linkage_wire import Act
from ledger.app import FlagLedger
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.erasure_messages import ErasureMessage
from ledger.linkage.messages import FlagChangeMessage, LinkMessage, UnlinkMessage
from ledger.linkage.record_contents import RecordOutcomeMessage
from ledger.runtime.linkage import code_of

__all__ = ["acts", "sends_unlink"]

# topics are part of the stored data and never move (docs/design.md, event catalogue)
_SET, _RELEASED = "ledger.domain.flags:Protection.FlagsSet", "ledger.domain.flags:Protection.FlagsReleased"
_AUTO, _HELD = "ledger.domain.provision:ProvisionRequest.AutoProvided", "ledger.domain.provision:ProvisionRequest.Held"
# a held request's later outcome, sent once the querier may see it: decided (not batched), or released at its batch
_DECIDED = (
    "ledger.domain.provision:ProvisionRequest.ManuallyProvided",
    "ledger.domain.provision:ProvisionRequest.Refused",
    "ledger.domain.provision:ProvisionRequest.Released",
)
_LINKED = "ledger.domain.identity:PseudonymLink.Linked"
_UNLINKED, _RELINKED = "ledger.domain.identity:PseudonymLink.Unlinked", "ledger.domain.identity:PseudonymLink.Relinked"
_ERASED = "ledger.domain.erasure:ErasureNotice.Published"  # this agency's approved erasure (issue 22)
_TOPICS = [
    *(_SET, _RELEASED, _AUTO, _HELD, *_DECIDED, _LINKED, _UNLINKED, _RELINKED),
    *(*moves.TOPICS, bodies.SENT, bodies.OUTCOME, _ERASED, *proxies.TOPICS, *registrations.TOPICS),
]
_IDS = uuid.UUID("5f0c8a52-35f5-4a8e-9d0b-6c1f3e0a7b19")  # the namespace of flag change ids


def sends_unlink(event: Any) -> bool:
    """Whether the hub is told of this ``Unlinked``: a wrong link's, yes (the hub parts the numbers); a second
    change's, no — it keeps every protection on both numbers and the first retired, which at the hub is the link
    kept, the second number's link to the third making a chain (the earlier cards superseded). Told, the hub
    would part the first number from the person and answer a query about her third automatically while a holder
    protects the first (found by the hub leak-freedom model, tests/adversarial/test_leak_freedom_hub_unlinks.py)."""
    return not getattr(event, "second_change", False)


def acts(
    app: FlagLedger,
    engine: Engine,
    agency: str,
    end: AgencyEnd,
    mark: Callable[[Callable[[], None]], None],
    start: int,
    stop: int,
) -> Iterator[Act]:
    """This agency's shareable acts in its committed log after ``start`` up to ``stop``; ``mark``: the bridge's
    record of something sent (a wire key sent ahead of the first record under it)."""
    recorder, mapper = app.recorder, app.signed_mapper
    position = start + 1
    while position <= stop:
        rows = recorder.select_notifications(start=position, limit=500, stop=stop, topics=_TOPICS)
        for n in rows:
            event = mapper.decode(mapper.open(n.state))
            yield from _act(app, engine, agency, end, mark, n.topic, event, UUID(str(n.originator_id)), n.id)
        if len(rows) < 500:
            return
        position = rows[-1].id + 1


def _act(
    app: FlagLedger,
    engine: Engine,
    agency: str,
    end: AgencyEnd,
    mark: Callable[[Callable[[], None]], None],
    topic: str,
    event: Any,
    stream: UUID,
    position: int,
) -> Iterator[Act]:
    if topic in (_SET, _RELEASED):
        if event.agency != agency:
            return
        action = "set" if topic == _SET else "release"
        for flag in event.flags:
            change = uuid.uuid5(_IDS, f"{stream}:{event.originator_version}:{flag}").hex
            yield (event.subject,), FlagChangeMessage(change, code_of(event.subject), flag, action)
        return
    if topic == _LINKED:  # a number change made with this agency's four eyes: one person at the hub
        if event.agency == agency:
            yield (event.old, event.new), LinkMessage(code_of(event.old), code_of(event.new))
        return
    if topic in (_UNLINKED, _RELINKED):  # undone (the link as it was), or the old number linked anew
        link: Any = app.repository.get(stream, version=event.originator_version - 1)
        if link.agency != agency:
            return
        if topic == _UNLINKED and not sends_unlink(event):
            return
        if topic == _UNLINKED:
            yield (link.old, link.new), UnlinkMessage(code_of(link.old), code_of(link.new))
        else:
            yield (link.old, event.new), LinkMessage(code_of(link.old), code_of(event.new))
        return
    if topic in (bodies.SENT, bodies.OUTCOME):  # a body's request, or the answer to one the hub routed here
        with engine.connect() as conn:
            yield from list(bodies.body_message(conn, agency, topic, event, stream))
        return
    if topic in moves.TOPICS:  # a residence change it recorded, a last holder's warning: the hub's to route
        yield from moves.outgoing(agency, topic, event, stream)
        return
    if topic in proxies.TOPICS:  # this agency's four eyes approved a proxy, or withdrew it: the hub is told
        approval: Any = app.repository.get(stream, version=event.originator_version)
        yield from proxies.proxy_message(agency, topic, approval, stream, event.originator_version)
        return
    if topic in registrations.TOPICS:  # a Mynaportal proxy registered or cancelled here: the hub is told
        reg: Any = app.repository.get(stream, version=event.originator_version)
        yield from registrations.registration_message(agency, topic, reg, stream, event.originator_version)
        return
    if topic == _ERASED:  # the hub shreds the records this agency sent it about the person, the portal's page too
        if event.agency == agency:
            yield (event.subject,), ErasureMessage(UUID(event.request_id).hex, code_of(event.subject))
            yield from wire.erased(app, end, event.subject, event.request_id)  # the portal's keys
        return
    if topic in _DECIDED:  # the record's outcome changes at the hub, where it stays (ledger.hub.record_outcomes)
        decided: Any = app.repository.get(stream, version=event.originator_version)
        if decided.agency == agency and decided.decided and decided.answer_released:
            yield from wire.key_first(end, decided.subject, mark)
            yield (decided.subject,), _outcome(end, decided, event)
        return
    request = app.provision_request(stream)
    if request.agency != agency:
        return
    yield from wire.key_first(end, request.subject, mark)
    outcome = "provided" if topic == _AUTO else "held"
    made_at = event.timestamp.isoformat() if isinstance(event.timestamp, datetime) else str(event.timestamp)
    yield (
        (request.subject,),
        end.sealed_record(  # its contents sealed to the portal: the hub cannot read them
            code_of(request.subject),
            request.id.hex,
            request.querier,
            request.procedure,
            request.legal_item,
            request.info_kind,
            outcome,
            made_at,
            end.wire_for(request.subject)[0],
            stamp_at(engine, position),  # the hub's sequence as seen when the record was made, however late it leaves
        ),
    )


def _outcome(end: AgencyEnd, request: Any, event: Any) -> RecordOutcomeMessage:
    """The request's decided outcome, for the record the hub filed under its id (its contents sealed anew)."""
    made_at = event.timestamp.isoformat() if isinstance(event.timestamp, datetime) else str(event.timestamp)
    first = end.sealed_record(
        code_of(request.subject),
        request.id.hex,
        request.querier,
        request.procedure,
        request.legal_item,
        request.info_kind,
        request.status,
        made_at,
        end.wire_for(request.subject)[0],
    )
    return RecordOutcomeMessage(first.record_id, first.code, first.contents, event.originator_version)
