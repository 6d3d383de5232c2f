"""hub-1's store on the suite's backend, as most hub tests open it: the ``hub`` fixture (and ``leader_hub``, the
same store holding the sequencer's lease), made available to every test by tests/conftest.py, and the context
manager behind it for worlds that open the hub inside their own set-up (tests/support/witness_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ledger.hub.log import HubStore, open_hub_store

__all__ = ["hub", "hub_store", "leader_hub"]


@contextmanager
def hub_store(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    """hub-1's store on ``backend`` (a PostgreSQL URL), or on SQLite under ``tmp_path``; closed after."""
    opened = open_hub_store(backend or f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def hub(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    """hub-1's store on each backend (SQLite, PostgreSQL)."""
    with hub_store(backend, tmp_path) as store:
        yield store


@pytest.fixture
def leader_hub(hub: HubStore) -> HubStore:
    """``hub`` as the leader, for tests that write its log directly (a HubService takes the lease itself)."""
    hub.sequencer.take_lease()
    return hub
