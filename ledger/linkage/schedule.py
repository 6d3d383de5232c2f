"""A digest schedule: when the next tick is due and how large each digest is — for the hub, the portal and an
agency node alike (each party's traffic then looks like every other's: docs/accountable-hub.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.errors import ConfigurationError
from ledger.linkage.buckets import BUCKETS
from ledger.linkage.digests import DIGEST_SIZE

__all__ = ["DigestSchedule"]


@dataclass
class DigestSchedule:
    """A tick every ``every`` seconds (the loops tick when it is due; tests call ``tick`` themselves), each
    digest ``size`` bytes (a bucket)."""

    every: float = 1.0
    size: int = DIGEST_SIZE
    clock: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0.01 <= self.every <= 3600:
            raise ConfigurationError(f"a digest tick comes every 0.01 to 3600 seconds, not {self.every}")
        if self.size not in BUCKETS:
            raise ConfigurationError(f"a digest's size must be a bucket {BUCKETS}, not {self.size}")

    def due(self) -> bool:
        now = self.clock()
        return self._last is None or now - self._last >= self.every

    def ticked(self) -> None:
        self._last = self.clock()

    def overdue(self) -> float:
        """Seconds the next tick is overdue (0 on time, or before the first): a loop that stalls shows here."""
        if self._last is None:
            return 0.0
        return max(0.0, self.clock() - self._last - self.every)
