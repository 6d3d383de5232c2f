"""Provision records whose contents the hub cannot read: filed in the hub's sequence, hidden by it, opened by
the portal alone.

A provider sends ``sealed_record`` (``ledger.linkage.record_contents``): its record id, its code for the person,
and the contents sealed to the portal. The hub files (seq, record id, person, provider, the sealed bytes) in
``hub_sealed_records`` — once per record id, as :class:`~ledger.hub.log.HubLog` files the clear ones — and
serves the portal a page of the person's sealed records that ``NON_DISCLOSURE`` does not hide, by the hub's
sequence across the person's numbers (:func:`~ledger.hub.portal_view.intervals_of`). The portal opens each
(:func:`open_page`): a record whose contents are not the provider's, or not for that record id, is refused.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import NotFoundError
from ledger.hub import txn
from ledger.hub.links import joined
from ledger.hub.log import Also, HubStore
from ledger.hub.portal_view import PortalPage, PortalRecord, intervals_of
from ledger.hub.tables import hub_sealed_records
from ledger.linkage.codes import CodeMap, check_code, persons_of
from ledger.linkage.hiding import HIDDEN_NOTE, hidden
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import PORTAL, check_party
from ledger.linkage.record_contents import SealedRecordMessage, StampedRecordMessage, open_contents
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.wire_keys import WireLookup
from ledger.storage import storage_error

# built once: a provider's records are most of the hub's inbox
_FIRST = select(hub_sealed_records.c.seq).where(hub_sealed_records.c.record_id == bindparam("record_id"))
_FILE = insert(hub_sealed_records)

__all__ = ["SealedEntry", "SealedPage", "file_sealed", "open_page", "position", "records_among", "sealed_page"]


@dataclass(frozen=True)
class SealedEntry:
    record_id: str
    provider: str
    contents: bytes  # sealed by the provider to the portal


@dataclass(frozen=True)
class SealedPage:
    records: tuple[SealedEntry, ...]
    note: str | None  # HIDDEN_NOTE when something was left out


def file_sealed(store: HubStore, provider: str, record: SealedRecordMessage, also: Also = None) -> int:
    """File ``provider``'s sealed record under the person its code names; returns its sequence number (the
    first one, if the record came before). A ``stamped_record`` is hidden from the lower of its stamp and its
    number (:func:`position`)."""
    record.check()
    stamp = record.stamp if isinstance(record, StampedRecordMessage) else None
    person = store.codes.person(check_party(provider, "provider"), record.code)
    if person is None:
        raise NotFoundError(f"{provider} has registered no person under this code at the hub")
    row = {
        "record_id": record.record_id,
        "person": person,
        "provider": provider,
        "contents": record.sealed(),
    }

    def first(conn: Connection) -> int | None:
        poll = txn.current(conn=conn)
        if poll is not None and record.record_id in poll.records:
            return poll.records[record.record_id]  # read for the whole poll at its start (records_among)
        found = conn.execute(_FIRST, {"record_id": record.record_id}).scalar()
        return None if found is None else int(found)

    def write(conn: Connection, seq: int) -> None:
        if (poll := txn.current(conn=conn)) is not None:
            # nothing in the poll reads the row back by SQL (the record-id check asks the poll): inserted with the
            # poll's other rows in one executemany at its commit — so this append needs no SAVEPOINT
            poll.later(_FILE, {"seq": seq, "position": position(stamp, seq), **row})
            poll.file(record.record_id, seq)
        else:
            conn.execute(_FILE, {"seq": seq, "position": position(stamp, seq), **row})
        if also is not None:
            also(conn, seq)  # the loop's: the applied id, held for the commit as well

    # no SAVEPOINT: a failure in it drops what it held; had ``also`` written on the connection itself (the loop's
    # only holds the applied id), the poll would stop rather than keep half of it (ledger.hub.txn.held)
    return store.sequencer.append(first, write, held=True)


def position(stamp: int | None, arrival: int) -> int:
    """Where non-disclosure hides a record from: the highest hub sequence number its provider had seen when it
    made it, if lower than its arrival — a record made under protection that reached the hub after the release
    stays hidden — else its arrival. A stamp above the arrival is a provider's lie (it cannot have seen a number
    not yet handed out) and is ignored: a provider can hide its own records more, never less. Unstamped (an
    older provider): its arrival, as before."""
    return arrival if stamp is None else min(stamp, arrival)


BATCH = 400  # record ids per IN query


def records_among(conn: Connection, record_ids: Collection[str]) -> dict[str, int]:
    """Which of ``record_ids`` are filed, with their numbers: one query per ``BATCH`` (a poll's record-id check)."""
    r = hub_sealed_records.c
    wanted, found = sorted(set(record_ids)), {}
    for at in range(0, len(wanted), BATCH):
        stmt = select(r.record_id, r.seq).where(r.record_id.in_(wanted[at : at + BATCH]))
        found.update({str(i): int(q) for i, q in conn.execute(stmt)})
    return found


def sealed_page(engine: Engine, codes: CodeMap, portal_code: str) -> SealedPage:
    """The sealed records of the person the portal knows by ``portal_code``, hidden ones left out."""
    person = codes.person(PORTAL, check_code(portal_code, "portal code"))
    if person is None:
        raise NotFoundError("the portal has registered no person under this code at the hub")
    persons = persons_of(codes, person)
    intervals = intervals_of(engine, persons, joined(engine, person))  # and numbers once joined (an undone link)
    r = hub_sealed_records.c
    at = func.coalesce(r.position, r.seq)  # NULL: filed before positions were kept, at its arrival
    stmt = select(at, r.record_id, r.provider, r.contents).where(r.person.in_(persons)).order_by(r.seq)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's sealed provision records", exc) from exc
    visible = [row for row in rows if not hidden(int(row[0]), intervals)]  # by its position, shown in seq order
    # a record its provider erased (contents shredded, ledger.hub.erasure) is on no page; the note still counts
    # every hidden record, erased or not, so an erasure never changes what the page says was hidden
    shown = tuple(
        SealedEntry(str(rid), str(provider), bytes(contents)) for _, rid, provider, contents in visible if contents
    )
    return SealedPage(shown, HIDDEN_NOTE if len(visible) < len(rows) else None)


def open_page(
    portal: PartyKeys, page: SealedPage, sender_keys: SenderKeys, wires: WireLookup | None = None
) -> PortalPage:
    """The portal's side: every entry opened and checked to be its provider's, for its record id (under its wire
    key, from ``wires``, if it was sent under one: ledger.linkage.wire_keys)."""
    records = []
    for entry in page.records:
        c = open_contents(portal, entry.contents, sender_keys, entry.record_id, entry.provider, wires)
        records.append(
            PortalRecord(
                entry.record_id, c.made_at, c.querier, entry.provider, c.procedure, c.legal_item, c.info_kind, c.outcome
            )
        )
    return PortalPage(tuple(records), page.note)
