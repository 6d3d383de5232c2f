"""Every process a fault test started is killed when the test ends, passed or failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import kill_leftovers


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    kill_leftovers()
