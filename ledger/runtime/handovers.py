"""What the linkage hub told an agency node in hub mode about handovers (issue 19, docs/linkage.md), read by the
application's handover rules (``ledger.app.handover.HubMoveFacts``).

Kept in ``linkage_handovers`` by the bridge (``consumers.linkage_moves``): ``in`` rows are the hub's requests
that this municipality take over flags on a person it knows by its own subject (no holder, no old
municipality named); ``out`` rows are the hub's word that the municipality this agency reported the person
moved to now holds these flags — so the old holder may release without a decision naming the risk; ``wd`` rows
are ``in`` rows the hub withdrew (the person moved on from here): kept, no longer asked; ``lh`` rows are the hub's
warnings that another holder asked to release flags no one else holds (``last_holder_warning``); ``on`` rows are
the hub's word that flags of a move this agency reported are held where the person moved on to (``handed_on``: no
municipality named, ``to_agency`` empty); ``rf`` rows are moves this agency reported that the hub refused (``id``:
the move id; ``to_agency``: this agency; ``flags``: the hub's reason, ``not_residence``) — no one was asked.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.runtime.tables import linkage_handovers
from ledger.storage import storage_error

__all__ = [
    "IN",
    "ONWARD",
    "OUT",
    "REFUSED",
    "WARNED",
    "WITHDRAWN",
    "HubHandovers",
    "move_id",
    "onward_id",
    "warning_id",
]

IN, OUT, WITHDRAWN, WARNED, ONWARD, REFUSED = "in", "out", "wd", "lh", "on", "rf"
_MOVES = uuid.UUID("0b6f5f4e-8f1a-4d53-9a55-2c7d0e6f1a33")  # of move and warning ids (never changes: stored)
_ONWARD = uuid.UUID("9e2b7c41-5d3a-4f6e-b8a0-1c4d7e2f9a55")  # an ``on`` row's id, one per move


def move_id(stream: uuid.UUID, version: int = 1) -> str:
    """The id a ``move`` carries for the residence change of ``stream`` (its ``Recorded`` is version 1)."""
    return uuid.uuid5(_MOVES, f"{stream}:{version}").hex


def warning_id(stream: uuid.UUID, version: int) -> str:
    """The id a ``last_holder`` carries for the warning raised as event ``version`` of ``stream``."""
    return uuid.uuid5(_MOVES, f"warning:{stream}:{version}").hex


def onward_id(move: str) -> str:
    """The ``on`` row of a move (the hub names all flags held onward each time: the row is updated)."""
    return uuid.uuid5(_ONWARD, move).hex


class HubHandovers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _rows(self, *where: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(select(linkage_handovers).where(*where).order_by(linkage_handovers.c.at)))
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
        h = linkage_handovers.c
        return [
            {"warning_id": r.id, "subject": r.subject, "flags": r.flags.split(",")}
            for r in self._rows(h.direction == WARNED, h.to_agency == agency)
        ]

    def refused(self, agency: str) -> list[dict[str, Any]]:
        h = linkage_handovers.c
        return [
            {"move_id": r.id, "subject": r.subject, "reason": r.flags, "at": r.at}
            for r in self._rows(h.direction == REFUSED, h.to_agency == agency)
        ]

    def taken_onward(self, subject: str, move: uuid.UUID) -> set[str]:
        h = linkage_handovers.c
        rows = self._rows(h.id == onward_id(move_id(move)), h.subject == subject, h.direction == ONWARD)
        return {f for r in rows for f in r.flags.split(",")}
