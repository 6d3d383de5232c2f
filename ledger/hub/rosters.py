"""The agencies' staff rosters at the hub: kept from their ``staff_roster`` messages, folded for the
consultation's four-eyes check (``HubService(rosters=HubRosters(engine))``). Design: ledger.linkage.staff_rosters.

* :func:`keep_roster` files one message in the hub's sequence (fenced by the lease) with its applied id: the
  events the hub already holds must be the ones sent at those positions (``conflict`` otherwise: a stream
  rewritten, or a second story told), the new ones are appended; a message that starts past what the hub
  holds is refused (``conflict``, saying where to start). Nothing of a refused message is kept.
* :class:`HubRosters` reads them back per agency, folded by the ledger's rule, and folds again only when the
  agency's count of events changed — read from the database, so a leader that took over from another sees
  every roster its predecessor kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import StateConflict
from ledger.hub.inbox import applied_seq, mark_applied
from ledger.hub.log import HubStore
from ledger.hub.tables import hub_rosters
from ledger.linkage.sealing import Opened
from ledger.linkage.staff_rosters import RosterEvent, StaffRosterMessage, fold
from ledger.log.staff_roster import RosterState
from ledger.storage import storage_error

__all__ = ["HubRosters", "keep_roster"]


def _canonical(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def keep_roster(store: HubStore, opened: Opened, m: StaffRosterMessage) -> None:
    """File ``opened`` (a ``staff_roster`` from an agency); a ledger error, nothing kept, if it does not fit."""
    events, agency, r = m.decoded(), opened.sender, hub_rosters.c

    def write(conn: Connection, seq: int) -> None:
        held = [
            (str(k), str(f))
            for k, f in conn.execute(select(r.kind, r.fields).where(r.agency == agency).order_by(r.position))
        ]
        if m.position > len(held):
            raise StateConflict(f"the hub holds {len(held)} events of {agency}'s roster: send from {len(held)}")
        for at, (kind, fields) in enumerate(events, m.position):
            if at < len(held):
                if held[at] != (kind, _canonical(fields)):
                    raise StateConflict(f"event {at} of {agency}'s roster differs from the one the hub kept")
                continue
            conn.execute(
                insert(hub_rosters).values(agency=agency, position=at, kind=kind, fields=_canonical(fields), seq=seq)
            )
        mark_applied(conn, agency, opened.event_id, seq)

    store.sequencer.append(lambda conn: applied_seq(conn, agency, opened.event_id), write)


class HubRosters(Mapping[str, RosterState]):
    """Each agency's roster as the hub kept it (an agency that sent none has none: its decisions are refused)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._folded: dict[str, tuple[int, RosterState]] = {}

    def _read(self, conn: Connection, agency: str) -> list[RosterEvent]:
        r = hub_rosters.c
        rows = conn.execute(select(r.kind, r.fields).where(r.agency == agency).order_by(r.position))
        return [(str(k), json.loads(f)) for k, f in rows]

    def __getitem__(self, agency: str) -> RosterState:
        r = hub_rosters.c
        try:
            with self.engine.connect() as conn:
                count = int(
                    conn.execute(select(func.count()).select_from(hub_rosters).where(r.agency == agency)).scalar_one()
                )
                if count == 0:
                    raise KeyError(agency)
                found = self._folded.get(agency)
                if found is None or found[0] != count:
                    found = self._folded[agency] = (count, fold(agency, self._read(conn, agency), self.get))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the agencies' staff rosters at the hub", exc) from exc
        return found[1]

    def _agencies(self) -> list[str]:
        try:
            with self.engine.connect() as conn:
                return [str(a) for (a,) in conn.execute(select(hub_rosters.c.agency).distinct())]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the agencies' staff rosters at the hub", exc) from exc

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._agencies()))

    def __len__(self) -> int:
        return len(self._agencies())
