"""An agency's approved erasure applied at the hub (issue 22, docs/erasure.md "the hub and the portal").

The agency's node sends ``erasure`` (``ledger.linkage.erasure_messages``) after its four eyes approved it. The
hub takes it only as the verified signer's own: the code must be one that agency registered (else
``not_found``, parked), and what is shredded is what *that agency* sent the hub about the person — its
provision records, sealed to the portal (``hub_sealed_records``) or, from older senders, in the clear
(``hub_records``) — across every number the person has had. Another agency's records are never touched: a peer
cannot wipe the evidence of another by naming its person.

**Shredded, not deleted**: a record's row keeps its sequence number, record id, person id and provider; its
contents (sealed bytes, or the clear text) are overwritten with nothing (:data:`SHREDDED`). The row must stay:
the page's note ``hidden under non-disclosure`` is decided over every record the person has, so deleting a
hidden record would change what the page says; and the hiding intervals (``hub_flag_changes``) are not touched
at all — an erasure never un-hides anything. A shredded record is not on any page.

**What the hub keeps**: the erasure itself (``hub_erasures``: sequence, agency, its request id, person id, how
many records), which also tells the portal feed that the person's page changed; the applied id; signed heads and
the flag map (their leaves commit to flags, never to a record's contents). On SQLite the shredding runs with
``secure_delete`` and the WAL is truncated after it, so the old bytes do not stay in free pages.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import NotFoundError
from ledger.hub.log import Also, HubStore
from ledger.hub.tables import hub_erasures, hub_records, hub_sealed_records
from ledger.linkage.codes import persons_of
from ledger.linkage.erasure_messages import ErasureMessage
from ledger.linkage.names import check_party
from ledger.storage import storage_error

__all__ = ["SHREDDED", "erase", "erasures", "scrub"]

log = logging.getLogger("flagledger.hub.erasure")

SHREDDED = b""  # a shredded record's contents: a sealed record is never empty (SealedRecordMessage.check)
_CLEAR_TEXT = ("querier", "procedure", "info_kind", "outcome", "made_at")


def erase(store: HubStore, agency: str, message: ErasureMessage, also: Also = None) -> int:
    """Shred ``agency``'s records about the person its code names; returns the erasure's sequence number (the
    first one, if the message came before). ``not_found`` if ``agency`` registered no such code."""
    message.check()
    person = store.codes.person(check_party(agency, "agency"), message.code)
    if person is None:
        raise NotFoundError(f"{agency} has registered no person under this code at the hub: it erases nobody here")
    persons = persons_of(store.codes, person)
    e, s, r = hub_erasures.c, hub_sealed_records.c, hub_records.c

    def first(conn: Connection) -> int | None:
        found = conn.execute(select(e.seq).where((e.agency == agency) & (e.erasure_id == message.erasure_id))).scalar()
        return None if found is None else int(found)

    def write(conn: Connection, seq: int) -> None:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA secure_delete=ON")  # freed bytes overwritten, not left in free pages
        mine = s.person.in_(persons) & (s.provider == agency)
        sealed = conn.execute(
            update(hub_sealed_records).where(mine & (func.length(s.contents) > 0)).values(contents=SHREDDED)
        ).rowcount
        clear_mine = r.person.in_(persons) & (r.provider == agency) & (r.made_at != "")
        clear = conn.execute(
            update(hub_records).where(clear_mine).values(legal_item=0, **dict.fromkeys(_CLEAR_TEXT, ""))
        ).rowcount
        conn.execute(
            hub_erasures.insert().values(
                seq=seq, agency=agency, erasure_id=message.erasure_id, person=person, records=sealed + clear
            )
        )
        if also is not None:
            also(conn, seq)

    seq = store.sequencer.append(first, write)
    scrub(store.engine)
    return seq


def scrub(engine: Engine) -> None:
    """On SQLite, fold the WAL into the database and cut it to nothing, so no frame keeps a shredded record's
    old page. (On PostgreSQL the old row versions go with VACUUM and the server's WAL recycling: docs/erasure.md.)"""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except SQLAlchemyError as exc:  # the erasure is committed: not a reason to stop the loop, which would not redo this
        log.warning("the hub's WAL was not truncated after an erasure (the next checkpoint folds it): %s", exc)


def erasures(engine: Engine) -> list[dict[str, object]]:
    """The erasures the hub applied, in its sequence (for its audit: who erased, which request, how many)."""
    e = hub_erasures.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(e.seq, e.agency, e.erasure_id, e.records).order_by(e.seq)).all()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's erasures", exc) from exc
    return [{"seq": int(q), "agency": str(a), "erasure_id": str(i), "records": int(n)} for q, a, i, n in rows]
