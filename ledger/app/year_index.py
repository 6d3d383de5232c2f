"""The year queue's projection (issue 21, docs/year.md): which aggregates of the year's kinds exist, in log order,
followed incrementally — so a year read (the queue, the step, the handover guard, the companion and perpetrator
prompts) no longer asks the whole log for their creation events on each call, only for those appended since the
last one. The aggregates themselves are still loaded (and verified) from their own streams on each read, so
every answer is the one a full scan gives (``tests/integration/test_year_index.py`` compares the two on a
generated history).

It follows notification ids as :class:`projections.verified.VerifiedState` does (the recorder makes them visible
in order), and any writer's events — another process on the same log, an ingested peer's — are seen on the next
read. It is per app instance and in memory: a restart rebuilds it with one pass over those topics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

__all__ = ["CreatedIndex"]

PAGE = 1000


class CreatedIndex:
    """Topic → the originator ids of its events in log order, for a fixed set of creation topics."""

    def __init__(self, recorder: Callable[[], Any], topics: Iterable[str]) -> None:
        self._recorder = recorder  # asked each time: the app's recorder, whichever it holds now
        self._topics = sorted(set(topics))
        self._ids: dict[str, list[UUID]] = {t: [] for t in self._topics}
        self._position = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, recorder: Callable[[], Any], events: Iterable[type]) -> CreatedIndex:
        return cls(recorder, (get_topic(e) for e in events))

    def ids(self, topic: str) -> list[UUID]:
        """The ids created under ``topic`` up to now (after reading what was appended since the last call)."""
        if topic not in self._ids:
            raise KeyError(f"the year index does not follow {topic}")
        with self._lock:
            self._follow()
            return list(self._ids[topic])

    def _follow(self) -> None:
        while True:
            rows = self._recorder().select_notifications(start=self._position + 1, limit=PAGE, topics=self._topics)
            for n in rows:
                self._ids[n.topic].append(UUID(str(n.originator_id)))
            if rows:
                self._position = rows[-1].id
            if len(rows) < PAGE:
                return
