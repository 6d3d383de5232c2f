"""Handovers at an agency node in hub mode (issue 19, docs/linkage.md; the hub's side: ``ledger.hub.moves``).

**Out**: a residence change this agency recorded (``ResidenceChange.Recorded``: entered at its counter or
received from the residence registry, only for a person it protects) goes to the hub as a ``move`` under its
own code, its id derived from the event so a resend is filed once; a last-holder warning raised here
(``LastHolderWarning.Raised``) goes as ``last_holder``, for the hub to warn the person's other holders.

**In**: the hub's ``handover`` (this municipality is asked to take over flags on a person it knows by its own
code; no holder, no old municipality) and ``handed_over`` (the municipality this agency reported the move to now
holds these flags) are kept in ``linkage_handovers``; ``handover_withdrawn`` (the person moved on before, or
after, this municipality took over) moves its ``in`` rows about the person to ``linkage_handovers_withdrawn``
(kept, no longer asked); ``handed_on`` (she moved on from where this agency reported her move to, and is
protected where she lives now) is kept in ``linkage_handed_on``; ``last_holder_warning`` (another holder asked to
release flags no one else holds) in ``linkage_holder_warnings``; ``move_refused`` (a move this agency reported was
refused, ``not_residence``: no handover is under way) in ``linkage_moves_refused``, listed in the year queue
(``moves_refused``). The application's handover rules read them
(``ledger.runtime.handovers``): the new municipality's handover queue, the old holder's release guard, and every
holder's year queue. An erasure of the person drops them all (``ledger.runtime.erasure_scrub``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from ledger.linkage.messages import Message
from ledger.linkage.moves import (
    HandedOn,
    HandedOver,
    HandoverMessage,
    HandoverWithdrawn,
    LastHolderMessage,
    LastHolderWarned,
    MoveMessage,
    MoveRefused,
    join_flags,
)
from ledger.runtime.handovers import IN, OUT, move_id, onward_id, warning_id
from ledger.runtime.linkage import code_of, subject_of
from ledger.runtime.tables import (
    linkage_handed_on,
    linkage_handovers,
    linkage_handovers_withdrawn,
    linkage_holder_warnings,
    linkage_moves_refused,
)

__all__ = ["FROM_HUB", "MOVED", "RAISED", "TOPICS", "apply", "move_message", "outgoing"]

# topics are part of the stored data and never move (docs/design.md, event catalogue)
MOVED = "ledger.domain.moves:ResidenceChange.Recorded"
RAISED = "ledger.domain.moves:LastHolderWarning.Raised"
TOPICS = (MOVED, RAISED)
FROM_HUB = (HandoverMessage, HandedOver, HandedOn, HandoverWithdrawn, LastHolderWarned, MoveRefused)


def move_message(agency: str, event: Any, stream: uuid.UUID) -> Iterator[tuple[tuple[str, ...], MoveMessage]]:
    """The ``move`` for a residence change this agency recorded (none for another agency's)."""
    if event.agency != agency:
        return
    mid = move_id(stream, event.originator_version)
    yield (
        (event.subject,),
        MoveMessage(mid, code_of(event.subject), event.from_agency or "", event.to_agency, event.moved_on),
    )


def outgoing(agency: str, topic: str, event: Any, stream: uuid.UUID) -> Iterator[tuple[tuple[str, ...], Message]]:
    """What the hub is told of this agency's move, or of its last-holder warning (none of another agency's)."""
    if topic == MOVED:
        yield from move_message(agency, event, stream)
    elif event.agency == agency:  # a release asked here would leave these flags with no holder it can see
        wid = warning_id(stream, event.originator_version)
        yield (event.subject,), LastHolderMessage(wid, code_of(event.subject), join_flags(event.flags))


def apply(conn: Connection, agency: str, m: Message, now: datetime) -> None:
    """Keep the hub's word on a handover or a last holder (in the transaction that records its event id as
    applied)."""
    at = now.isoformat()
    if isinstance(m, LastHolderWarned):  # another holder's release would end these flags: kept once per id
        w = linkage_holder_warnings
        if conn.execute(select(w.c.id).where(w.c.id == m.warning_id)).first() is None:
            row = {"id": m.warning_id, "subject": subject_of(m.code), "to_agency": agency, "flags": m.flags}
            conn.execute(insert(w).values(**row, at=at))
        return
    if isinstance(m, MoveRefused):  # a move it reported was refused (not_residence): no one was asked
        r = linkage_moves_refused
        if conn.execute(select(r.c.id).where(r.c.id == m.move_id)).first() is None:
            row = {"id": m.move_id, "subject": subject_of(m.code), "to_agency": agency, "reason": m.reason}
            conn.execute(insert(r).values(**row, at=at))
        return
    if isinstance(m, HandedOn):  # a move it reported was superseded; these flags are held where she lives now
        _held(conn, linkage_handed_on, {"id": onward_id(m.move_id), "subject": subject_of(m.code)}, m.flags, at)
        return
    if isinstance(m, HandoverWithdrawn):  # rows asked earlier: the hub's messages come in order, a later ask stays
        h = linkage_handovers.c
        asked = (h.direction == IN, h.subject == subject_of(m.code), h.to_agency == agency)
        kept = (h.id, h.subject, h.to_agency, h.moved_on, h.flags)
        for asked_row in conn.execute(select(*kept).where(*asked)).mappings().all():
            conn.execute(insert(linkage_handovers_withdrawn).values(**asked_row, at=at))
        conn.execute(delete(linkage_handovers).where(*asked))
        return
    if isinstance(m, HandoverMessage):
        conn.execute(
            insert(linkage_handovers).values(
                id=m.handover_id,
                direction=IN,
                subject=subject_of(m.code),
                to_agency=agency,
                moved_on=m.moved_on,
                flags=m.flags,
                at=at,
            )
        )
        return
    if not isinstance(m, HandedOver):
        raise TypeError(f"not a handover's message: {m.kind}")
    row = {"id": m.move_id, "direction": OUT, "subject": subject_of(m.code), "to_agency": m.to_agency, "moved_on": ""}
    _held(conn, linkage_handovers, row, m.flags, at)


def _held(conn: Connection, table: Table, row: dict[str, str], flags: str, at: str) -> None:
    """Keep the hub's word that ``flags`` are held (``handed_over``, ``handed_on``): a row per move, whose flags a
    later word replaces (the hub names all it holds now)."""
    if conn.execute(select(table.c.id).where(table.c.id == row["id"])).first() is not None:
        conn.execute(update(table).where(table.c.id == row["id"]).values(flags=flags, at=at))
        return
    conn.execute(insert(table).values(**row, flags=flags, at=at))
