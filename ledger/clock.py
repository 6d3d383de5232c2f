"""The one place a node takes the time of day.

``FLAGLEDGER_CLOCK_SKEW_SECONDS`` (default 0) shifts it, so the fault-injection suite can run a node whose
clock is hours ahead or behind its peers (``tests/faults/test_clock_skew.py``). Event timestamps, the
application's clock and key validity dates all come from here, so a skewed node is skewed consistently,
like a machine whose system clock is wrong. Never set it in production.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from ledger.errors import ConfigurationError

__all__ = ["now", "skew"]

ENV = "FLAGLEDGER_CLOCK_SKEW_SECONDS"


def skew() -> timedelta:
    raw = os.environ.get(ENV)
    if not raw:
        return timedelta(0)
    try:
        return timedelta(seconds=float(raw))
    except ValueError as exc:
        raise ConfigurationError(f"{ENV}={raw!r} is not a number of seconds") from exc


def now() -> datetime:
    return datetime.now(UTC) + skew()
