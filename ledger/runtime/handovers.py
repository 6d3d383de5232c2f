"""What the linkage hub told an agency node in hub mode about handovers (issue 19, docs/linkage.md), read by the
application's handover rules (``ledger.app.handover.HubMoveFacts``).

Kept by the bridge (``consumers.linkage_moves``). In ``linkage_handovers``: ``in`` rows are the hub's requests
that this municipality take over flags on a person it knows by its own subject (no holder, no old
municipality named); ``out`` rows are the hub's word that the municipality this agency reported the person
moved to now holds these flags — so the old holder may release without a decision naming the risk. Each other
kind has its own table: ``linkage_handovers_withdrawn``, the ``in`` rows the hub withdrew (the person moved on
from here): kept, no longer asked; ``linkage_holder_warnings``, the hub's warnings that another holder asked to
release flags no one else holds (``last_holder_warning``); ``linkage_handed_on``, the hub's word that flags of a
move this agency reported are held where the person moved on to (``handed_on``: no municipality named);
``linkage_moves_refused``, moves this agency reported that the hub refused (``move_refused``, ``not_residence``:
no one was asked). An erasure of the person drops their rows from all five (``drop_erased``, called by
``ledger.runtime.erasure_scrub``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.runtime.tables import (
    linkage_handed_on,
    linkage_handovers,
    linkage_handovers_withdrawn,
    linkage_holder_warnings,
    linkage_moves_refused,
)
from ledger.storage import storage_error

__all__ = ["IN", "KEPT", "OUT", "HubHandovers", "move_id", "onward_id", "warning_id"]

IN, OUT = "in", "out"  # linkage_handovers.direction
# every table that keeps the hub's word on a handover or a last holder, each row naming the person by ``subject``
KEPT = (
    linkage_handovers,
    linkage_handovers_withdrawn,
    linkage_handed_on,
    linkage_holder_warnings,
    linkage_moves_refused,
)
_MOVES = uuid.UUID("0b6f5f4e-8f1a-4d53-9a55-2c7d0e6f1a33")  # of move and warning ids (never changes: stored)
_ONWARD = uuid.UUID("9e2b7c41-5d3a-4f6e-b8a0-1c4d7e2f9a55")  # a handed-on row's id, one per move


def move_id(stream: uuid.UUID, version: int = 1) -> str:
    """The id a ``move`` carries for the residence change of ``stream`` (its ``Recorded`` is version 1)."""
    return uuid.uuid5(_MOVES, f"{stream}:{version}").hex


def warning_id(stream: uuid.UUID, version: int) -> str:
    """The id a ``last_holder`` carries for the warning raised as event ``version`` of ``stream``."""
    return uuid.uuid5(_MOVES, f"warning:{stream}:{version}").hex


def onward_id(move: str) -> str:
    """The ``linkage_handed_on`` row of a move (the hub names all flags held onward each time: the row is updated)."""
    return uuid.uuid5(_ONWARD, move).hex


class HubHandovers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _rows(self, *where: Any, table: Table = linkage_handovers) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(select(table).where(*where).order_by(table.c.at)))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the handovers the hub sent", exc) from exc

    def taken_over(self, subject: str) -> dict[str, list[str]]:
        h = linkage_handovers.c
        out: dict[str, list[str]] = defaultdict(list)
        for row in self._rows(h.subject == subject, h.direction == OUT):
            for flag in row.flags.split(","):
                if row.to_agency not in out[flag]:
                    out[flag].append(row.to_agency)
        return dict(out)

    def asked(self, agency: str) -> list[dict[str, Any]]:
        h = linkage_handovers.c
        return [
            {"handover_id": r.id, "subject": r.subject, "moved_on": r.moved_on, "flags": r.flags.split(",")}
            for r in self._rows(h.direction == IN, h.to_agency == agency)
        ]

    def warned(self, agency: str) -> list[dict[str, Any]]:
        w = linkage_holder_warnings
        return [
            {"warning_id": r.id, "subject": r.subject, "flags": r.flags.split(",")}
            for r in self._rows(w.c.to_agency == agency, table=w)
        ]

    def refused(self, agency: str) -> list[dict[str, Any]]:
        r = linkage_moves_refused
        return [
            {"move_id": row.id, "subject": row.subject, "reason": row.reason, "at": row.at}
            for row in self._rows(r.c.to_agency == agency, table=r)
        ]

    def taken_onward(self, subject: str, move: uuid.UUID) -> set[str]:
        o = linkage_handed_on
        rows = self._rows(o.c.id == onward_id(move_id(move)), o.c.subject == subject, table=o)
        return {f for r in rows for f in r.flags.split(",")}
