"""An agency's checks of the hub's flag map kept in its node's database (issue #20): :class:`SqlMapKeep`, the
``ledger.linkage.checks.MapKeep`` on the operational tables (``ledger.runtime.tables``, migrations 0006 and 0014).

Each write is its own small transaction, made when the check changed its state, so a restarted agency knows
the map keys it derived, what the hub acknowledged filing (and by when it must show it: ``agency_map_unseen``),
the heads it saw (a rollback or a fork across the restart is still found) and the evidence it raised. Heads are
pruned to the newest :data:`HEADS_KEPT`: a fork older than that, shown only now, is found by the log's
consistency proofs rather than by sequence. No number is kept: a registration the hub had not answered before
the restart is sent again by the agency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.linkage.checks import HubIncident, Kept
from ledger.linkage.hub_wire import decode_evidence, decode_head, encode_evidence, encode_head
from ledger.linkage.map_heads import MapHead
from ledger.linkage.messages import FlagChangeMessage
from ledger.runtime.tables import (
    agency_hub_incidents,
    agency_map_flags,
    agency_map_heads,
    agency_map_keys,
    agency_map_unfiled,
    agency_map_unseen,
)
from projections.base import storage_error

__all__ = ["HEADS_KEPT", "SqlMapKeep"]

HEADS_KEPT = 10_000


class SqlMapKeep:
    def __init__(self, engine: Engine, agency: str) -> None:
        self.engine = engine
        self.agency = agency

    def _write(self, what: str, run: Callable[[Connection], object]) -> None:
        try:
            with self.engine.begin() as conn:
                run(conn)
        except SQLAlchemyError as exc:
            raise storage_error(f"cannot keep the agency's map checks ({what})", exc) from exc

    def load(self) -> Kept:
        a = self.agency
        try:
            with self.engine.connect() as conn:
                k, h, f, u, i = (t.c for t in (agency_map_keys, agency_map_heads, agency_map_flags,
                                               agency_map_unfiled, agency_hub_incidents))  # fmt: skip
                keys = {str(c): bytes(m) for c, m in conn.execute(select(k.code, k.map_key).where(k.agency == a))}
                heads = [
                    decode_head(bytes(b)) for (b,) in conn.execute(select(h.head).where(h.agency == a).order_by(h.seq))
                ]
                held = {
                    str(c): ({x for x in str(fl).split(",") if x}, int(at))
                    for c, fl, at in conn.execute(select(f.code, f.flags, f.filed_at).where(f.agency == a))
                }
                unfiled = [
                    FlagChangeMessage(str(cid), str(c), str(fl), str(ac))
                    for cid, c, fl, ac in conn.execute(
                        select(u.change_id, u.code, u.flag, u.action).where(u.agency == a)
                    )
                ]
                incidents = [
                    HubIncident(str(c), str(n), decode_evidence(bytes(e)), str(d), str(r))
                    for c, n, e, d, r in conn.execute(
                        select(i.code, i.note, i.evidence, i.digest, i.request_id).where(i.agency == a)
                    )
                ]
                n = agency_map_unseen.c
                unseen = {
                    str(c): (int(at), datetime.fromisoformat(str(due)))
                    for c, at, due in conn.execute(select(n.code, n.filed_at, n.due).where(n.agency == a))
                }
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the agency's map checks", exc) from exc
        return Kept(keys, heads, held, unfiled, incidents, unseen)

    def key(self, code: str, key: bytes) -> None:
        k = agency_map_keys.c
        self._write("map key", lambda conn: _upsert(conn, agency_map_keys, (k.agency == self.agency) & (k.code == code),
                                                   {"agency": self.agency, "code": code, "map_key": key}))  # fmt: skip

    def head(self, head: MapHead) -> None:
        h = agency_map_heads.c

        def run(conn: Connection) -> None:
            mine = (h.agency == self.agency) & (h.seq == head.seq)
            if conn.execute(select(h.seq).where(mine)).first() is None:
                conn.execute(insert(agency_map_heads).values(agency=self.agency, seq=head.seq, head=encode_head(head)))
            conn.execute(delete(agency_map_heads).where((h.agency == self.agency) & (h.seq <= head.seq - HEADS_KEPT)))

        self._write("head", run)

    def held(self, code: str, flags: frozenset[str], filed_at: int) -> None:
        f = agency_map_flags.c
        row = {"agency": self.agency, "code": code, "flags": ",".join(sorted(flags)), "filed_at": filed_at}
        self._write(
            "flags", lambda conn: _upsert(conn, agency_map_flags, (f.agency == self.agency) & (f.code == code), row)
        )

    def unfiled(self, change: FlagChangeMessage, filed: bool) -> None:
        u = agency_map_unfiled.c
        mine = (u.agency == self.agency) & (u.change_id == change.change_id)
        if filed:
            self._write("acknowledged change", lambda conn: conn.execute(delete(agency_map_unfiled).where(mine)))
            return
        row = {"agency": self.agency, "change_id": change.change_id, "code": change.code, "flag": change.flag,
               "action": change.action}  # fmt: skip
        self._write("change sent", lambda conn: _upsert(conn, agency_map_unfiled, mine, row))

    def incident(self, incident: HubIncident) -> None:
        if incident.evidence is None:
            return
        i = agency_hub_incidents.c
        row = {
            "agency": self.agency,
            "digest": incident.digest,
            "code": incident.code,
            "note": incident.note[:200],
            "request_id": incident.request_id,
            "evidence": encode_evidence(incident.evidence),
        }
        mine = (i.agency == self.agency) & (i.digest == incident.digest)
        self._write("incident", lambda conn: _upsert(conn, agency_hub_incidents, mine, row))

    def unseen(self, code: str, due: tuple[int, datetime] | None) -> None:
        n = agency_map_unseen.c
        mine = (n.agency == self.agency) & (n.code == code)
        if due is None:
            self._write("change shown", lambda conn: conn.execute(delete(agency_map_unseen).where(mine)))
            return
        row = {"agency": self.agency, "code": code, "filed_at": due[0], "due": due[1].isoformat()}
        self._write("change acknowledged", lambda conn: _upsert(conn, agency_map_unseen, mine, row))


def _upsert(conn: Connection, table: object, where: object, row: Mapping[str, object]) -> None:
    found = conn.execute(update(table).where(where).values(**row))  # type: ignore[arg-type]
    if found.rowcount == 0:
        conn.execute(insert(table).values(**row))  # type: ignore[arg-type]
