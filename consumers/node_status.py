"""What the node loop reports in ``node-status.json`` each round, cheaply and atomically.

The loop runs every ~100 ms. Counting parked messages used to select every parked row, envelope blobs
included, each round; :class:`ParkedWatch` asks the database for one count instead. The file is
replaced whole (:func:`ledger.files.replace_private`), so monitoring never reads half a file, and only when
its content changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from ledger.files import replace_private
from ledger.runtime.tables import parked_messages

__all__ = ["ParkedWatch", "StatusFile"]


class ParkedWatch:
    """The number of parked messages (every status, as ``consumers parked`` lists them), by ``count(*)``:
    one aggregate row, no envelope read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(parked_messages)).scalar_one())


class StatusFile:
    """``node-status.json``: written whole (0600) when its content changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: str | None = None

    def write(self, status: dict[str, Any]) -> bool:
        """Write ``status``; False when the file already says exactly that."""
        text = json.dumps(status)
        if text == self._last and self.path.exists():
            return False
        replace_private(self.path, text)
        self._last = text
        return True
