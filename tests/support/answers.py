"""Staff-made answers reach the querier only at the provider's batch time (issue 21): tests that look at a
decided answer first let the batch step run, a day on (every day has a batch time by policy)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger import clock
from ledger.app.access import LedgerAccess
from ledger.app.answers import run_batches


def release_decided(app: LedgerAccess) -> dict[str, Any]:
    """Run the batch step as the node loop would at a batch time after every decision made so far."""
    return run_batches(app, clock.now() + timedelta(days=1))
