"""A PostgreSQL server with no free connection slot for a moment: the views engine and the event store wait
for one instead of failing the command, and give up with the server's own error after their wait."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from ledger.capacity import ONE_SHOT, retry_while_server_full
from projections.base import create_engine
from tests.support.postgres import ADMIN_DSN, temp_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def one_slot() -> Iterator[tuple[str, str]]:
    """(libpq DSN, SQLAlchemy URL) of a role allowed one connection at a time, on a fresh database."""
    role = f"fl_slot_{uuid.uuid4().hex[:10]}"
    with temp_database() as url:
        db = url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
        try:
            yield (
                f"host=127.0.0.1 port=5432 user={role} dbname={db}",
                f"postgresql+psycopg://{role}@127.0.0.1:5432/{db}",
            )
        finally:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def _hold_for(dsn: str, seconds: float) -> threading.Thread:
    held = psycopg.connect(dsn)

    def release() -> None:
        time.sleep(seconds)
        held.close()

    t = threading.Thread(target=release)
    t.start()
    return t


def test_a_connection_waits_for_a_slot_to_free(one_slot: tuple[str, str]) -> None:
    """Defends a staff command in a burst (the administrator's work, recorded or refused, never half-done): a
    full server makes the command wait for a slot, then it runs."""
    dsn, url = one_slot
    releaser = _hold_for(dsn, 0.8)
    began = time.monotonic()
    engine = create_engine(url, ONE_SHOT)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar() == 1
    finally:
        engine.dispose()
        releaser.join()
    assert time.monotonic() - began >= 0.5, "it did wait for the slot"


def test_waiting_ends_with_the_servers_error(one_slot: tuple[str, str]) -> None:
    """Defends the operator from a command hanging for ever: past its wait, the server's refusal is raised."""
    dsn, _ = one_slot
    releaser = _hold_for(dsn, 2.0)
    try:
        began = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            retry_while_server_full(lambda: psycopg.connect(dsn), wait=0.6)
        assert 0.3 <= time.monotonic() - began < 2.0
    finally:
        releaser.join()
