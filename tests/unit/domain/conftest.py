"""Every domain test body runs with I/O refused (tests/support/no_io.py): no files, sockets, databases or
processes. A domain module that needs any of them to be constructed fails here, naming the operation."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.no_io import Guard


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    Guard.armed = True
    try:
        yield
    finally:
        Guard.armed = False


@pytest.fixture(autouse=True, scope="session")
def _law_catalogue_loaded() -> None:
    # the law catalogue is data shipped inside the package (ledger/domain/data), read once and cached: loaded here,
    # before any guarded test body, it is a constant to the domain — whichever domain test happens to ask first
    from ledger.domain.law import catalogue

    catalogue()
