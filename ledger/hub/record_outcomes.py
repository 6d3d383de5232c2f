"""A later outcome of a provision record at the hub (issue 19, docs/linkage.md "Outcome updates"): a request held
for staff, then provided or refused, is one record whose outcome changes — not a second record.

A provider sends ``record_outcome`` (``ledger.linkage.record_contents.RecordOutcomeMessage``): the record id it
sent before, its code, the contents anew (sealed to the portal, the hub cannot read them) and the request's event
version that decided it. The hub replaces the contents of the record it filed — only the provider's own, and
only with a newer version — and keeps its number and its hiding position: an update never moves a record later,
so an outcome decided after a release does not bring a record made under protection to the page. The update
takes a number of the hub's sequence of its own (``updated``), so the portal's feed sees the page changed.

A record its provider erased (contents shredded, ``ledger.hub.erasure``) stays shredded: a later outcome is
dropped. An outcome of a record the hub never filed (its first outcome parked, or another provider's) is parked
``not_found``.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select, update

from ledger.errors import NotFoundError
from ledger.hub.log import Also, HubStore
from ledger.hub.tables import hub_sealed_records
from ledger.linkage.names import check_party
from ledger.linkage.record_contents import RecordOutcomeMessage

__all__ = ["update_outcome"]


def update_outcome(store: HubStore, provider: str, m: RecordOutcomeMessage, also: Also = None) -> int:
    """Replace the contents of ``provider``'s record ``m.record_id`` with a newer outcome; returns the number the
    update was filed at (the record's own, if there was nothing newer to keep)."""
    m.check()
    check_party(provider, "provider")
    person = store.codes.person(provider, m.code)
    r = hub_sealed_records.c

    def existing(conn: Connection) -> int | None:
        row = conn.execute(
            select(r.seq, r.provider, r.person, func.length(r.contents).label("size"), r.outcome_version).where(
                r.record_id == m.record_id
            )
        ).first()
        if row is None or row.provider != provider or row.person != person:
            raise NotFoundError(f"an outcome of no record {provider} sent the hub about this person")
        if not row.size or int(row.outcome_version or 0) >= m.version:
            return int(row.seq)  # erased (stays shredded), or this outcome or a newer one kept already
        return None

    def write(conn: Connection, seq: int) -> None:
        conn.execute(
            update(hub_sealed_records)
            .where(r.record_id == m.record_id)
            .values(contents=m.sealed(), outcome_version=m.version, updated=seq)
        )
        if also is not None:
            also(conn, seq)

    return store.sequencer.append(existing, write)
