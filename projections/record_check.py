"""A provision record's row checked against the signed event it was projected from (:class:`RecordCheck`).

Like :mod:`projections.verified`, this is what security decisions read instead of view rows: the portal,
self-information and counter views say which records exist; whose record one is, when it was made and the
fields shown come from its verified ``Received`` event.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.errors import FlagLedgerError, IntegrityError
from projections.portal import canonical_time

if TYPE_CHECKING:
    from ledger.app import FlagLedger

__all__ = ["RECEIVED", "RecordCheck", "RecordFacts"]


RECEIVED = "ledger.domain.provision:ProvisionRequest.Received"


@dataclass(frozen=True)
class RecordFacts:
    """A provision record's fields as its signed ``Received`` event states them."""

    request_id: str
    subject: str
    created_at: str  # canonical UTC
    querier: str
    provider: str  # the event's signer: the providing agency records every request it receives
    procedure: str
    legal_item: int
    info_kind: str


class RecordCheck:
    """A provision record's row checked against the event it says it was projected from.

    The portal, self-information and counter views list record rows from the views (their outcome, and which
    ones exist); what decides whether one is shown — whose record it is and when it was made — and the fields
    shown come from the signed ``Received`` event at the row's ``position``, verified. A row whose position
    holds no such event for its request id is not shown. Events never change, so each is verified once
    (``cache`` most recent kept).
    """

    def __init__(self, app: FlagLedger, cache: int = 16384) -> None:
        self.app = app
        self.cache = cache
        self._lock = threading.Lock()
        self._seen: OrderedDict[int, RecordFacts | None] = OrderedDict()

    def facts(self, request_id: str, position: int) -> RecordFacts | None:
        with self._lock:
            if position in self._seen:
                self._seen.move_to_end(position)
                found = self._seen[position]
                return found if found is not None and found.request_id == request_id else None
        found = self._read(position)
        with self._lock:
            self._seen[position] = found
            if len(self._seen) > self.cache:
                self._seen.popitem(last=False)
        return found if found is not None and found.request_id == request_id else None

    def _read(self, position: int) -> RecordFacts | None:
        mapper = self.app.signed_mapper
        rows = self.app.recorder.select_notifications(start=position, limit=1, stop=position)
        if not rows or rows[0].topic != RECEIVED:
            return None
        n = rows[0]
        try:
            env = mapper.open(n.state)
            mapper.check_row(n, env)
            mapper.verify(env)
            ev: Any = mapper.decode(env)
        except FlagLedgerError as exc:
            raise IntegrityError(
                f"position {position} ({n.topic}) does not verify: {exc}; run `flagledger audit verify`",
                code=exc.code,
            ) from exc
        h = env.header
        return RecordFacts(
            h.stream,
            str(ev.subject),
            canonical_time(h.time),
            str(ev.querier),
            h.origin,
            str(ev.procedure),
            int(ev.legal_item),
            str(ev.info_kind),
        )
