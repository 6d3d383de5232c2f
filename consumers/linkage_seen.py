"""The hub's sequence as an agency node has seen it, kept durably: what each provision record is stamped with
(issue 19, docs/linkage.md "A record late to the hub", ``ledger.linkage.hub_seq``).

The hub puts its current sequence number in every message it seals to an agency. The node keeps, per number
seen that is higher than any before, where its own log ended when it saw it (``linkage_hub_seen``): an event
after that position was made knowing the number. A record is stamped with the highest number seen *before it
was made* (:func:`stamp_at`, its position in the log) — not when it is sent: a provider cut off from sending,
that goes on reading the hub's messages, still stamps a record made under protection with what it knew then,
and the hub keeps it hidden after the release.

A record made by a transaction that committed while a number was being recorded may take that number (its log
position read after the record committed but before the number's row): made at the same instant, after the
hub handed the number out, so it was made after whatever the number follows. Rows no record can need any more
(below the bridge's sent position, but the newest of them) are deleted as new numbers arrive.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import FlagLedger
from ledger.runtime.tables import linkage_hub_seen, linkage_position
from ledger.storage import storage_error

__all__ = ["highest", "saw", "stamp_at"]


def saw(app: FlagLedger, engine: Engine, seq: int) -> None:
    """The node has seen the hub's ``seq`` now (its log ending where it ends)."""
    h, p = linkage_hub_seen.c, linkage_position.c
    try:
        with engine.begin() as conn:
            top = conn.execute(select(h.position, h.seq).order_by(h.position.desc()).limit(1)).first()
            if top is not None and seq <= int(top.seq):
                return  # nothing new: the highest is kept
            at = app.max_position()  # read after the number was opened: every later event was made knowing it
            if top is not None and int(top.position) >= at:
                conn.execute(update(linkage_hub_seen).where(h.position == top.position).values(seq=seq))
            else:
                conn.execute(insert(linkage_hub_seen).values(position=at, seq=seq))
            # below the bridge's position in its log (what it sent), only the newest row is still needed
            sent = int(conn.execute(select(p.position).where(p.name == "log")).scalar() or 0)
            keep = select(func.max(h.position)).where(h.position <= sent).scalar_subquery()
            conn.execute(delete(linkage_hub_seen).where(h.position < keep))
    except SQLAlchemyError as exc:
        raise storage_error("cannot keep the hub's sequence number seen", exc) from exc


def stamp_at(engine: Engine, position: int) -> int | None:
    """The highest hub sequence number seen before the event at ``position`` of the node's log was made; None if
    none was (an older hub, or none heard from yet: the record is filed at its arrival)."""
    h = linkage_hub_seen.c
    try:
        with engine.connect() as conn:
            found = conn.execute(select(func.max(h.seq)).where(h.position < position)).scalar()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's sequence number seen", exc) from exc
    return None if found is None else int(found)


def highest(engine: Engine) -> int | None:
    """The highest hub sequence number this node has seen (None: none)."""
    h = linkage_hub_seen.c
    try:
        with engine.connect() as conn:
            found = conn.execute(select(func.max(h.seq))).scalar()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's sequence number seen", exc) from exc
    return None if found is None else int(found)
