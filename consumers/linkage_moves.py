"""Handovers at an agency node in hub mode (issue 19, docs/linkage.md; the hub's side: ``ledger.hub.moves``).

**Out**: a residence change this agency recorded (``ResidenceChange.Recorded``: entered at its counter or
received from the residence registry, only for a person it protects) goes to the hub as a ``move`` under its
own code, its id derived from the event so a resend is filed once; a last-holder warning raised here
(``LastHolderWarning.Raised``) goes as ``last_holder``, for the hub to warn the person's other holders.

**In**: the hub's ``handover`` (this municipality is asked to take over flags on a person it knows by its own
code; no holder, no old municipality) and ``handed_over`` (the municipality this agency reported the move to now
holds these flags) are kept in ``linkage_handovers``; ``handover_withdrawn`` (the person moved on before, or
after, this municipality took over) turns its ``in`` rows about the person into withdrawn ones (kept, no longer
asked); ``handed_on`` (she moved on from where this agency reported her move to, and is protected where she lives
now) is kept as an ``on`` row; ``last_holder_warning`` (another holder asked to release flags no one else holds) as
an ``lh`` row; ``move_refused`` (a move this agency reported was refused, ``not_residence``: no handover is
under way) as an ``rf`` row, listed in the year queue (``moves_refused``). The application's handover rules read
them (``ledger.runtime.handovers``): the new municipality's handover queue, the old holder's release guard, and
every holder's year queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

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
from ledger.runtime.handovers import IN, ONWARD, OUT, REFUSED, WARNED, WITHDRAWN, move_id, onward_id, warning_id
from ledger.runtime.linkage import code_of, subject_of
from ledger.runtime.tables import linkage_handovers

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
    h = linkage_handovers.c
    if isinstance(m, LastHolderWarned):  # another holder's release would end these flags: kept once per id
        if conn.execute(select(h.id).where(h.id == m.warning_id)).first() is None:
            row = {"id": m.warning_id, "direction": WARNED, "subject": subject_of(m.code), "to_agency": agency}
            conn.execute(insert(linkage_handovers).values(**row, moved_on="", flags=m.flags, at=now.isoformat()))
        return
    if isinstance(m, MoveRefused):  # a move it reported was refused (not_residence): no one was asked
        if conn.execute(select(h.id).where(h.id == m.move_id, h.direction == REFUSED)).first() is None:
            row = {"id": m.move_id, "direction": REFUSED, "subject": subject_of(m.code), "to_agency": agency}
            conn.execute(insert(linkage_handovers).values(**row, moved_on="", flags=m.reason, at=now.isoformat()))
        return
    if isinstance(m, HandedOn):  # a move it reported was superseded; these flags are held where she lives now
        _held(conn, onward_id(m.move_id), ONWARD, subject_of(m.code), "", m.flags, now)
        return
    if isinstance(m, HandoverWithdrawn):  # rows asked earlier: the hub's messages come in order, a later ask stays
        asked = (h.direction == IN, h.subject == subject_of(m.code), h.to_agency == agency)
        conn.execute(update(linkage_handovers).where(*asked).values(direction=WITHDRAWN, at=now.isoformat()))
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
                at=now.isoformat(),
            )
        )
        return
    if not isinstance(m, HandedOver):
        raise TypeError(f"not a handover's message: {m.kind}")
    _held(conn, m.move_id, OUT, subject_of(m.code), m.to_agency, m.flags, now)


def _held(
    conn: Connection, row_id: str, direction: str, subject: str, to_agency: str, flags: str, now: datetime
) -> None:
    """Keep the hub's word that ``flags`` are held (``handed_over``, ``handed_on``): a row per move, whose flags a
    later word replaces (the hub names all it holds now)."""
    h = linkage_handovers.c
    if conn.execute(select(h.id).where(h.id == row_id, h.direction == direction)).first() is not None:
        conn.execute(update(linkage_handovers).where(h.id == row_id).values(flags=flags, at=now.isoformat()))
        return
    row = {"id": row_id, "direction": direction, "subject": subject, "to_agency": to_agency, "moved_on": ""}
    conn.execute(insert(linkage_handovers).values(**row, flags=flags, at=now.isoformat()))
