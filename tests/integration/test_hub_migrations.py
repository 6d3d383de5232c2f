"""The hub's tables have their own Alembic chain (ledger/hub/migrations), on SQLite and PostgreSQL.

Threat: the administrator upgrading a hub. A new hub's tables and an upgraded hub's must be the same (the code
map and the sequence are state nothing can rebuild); the hub's chain and the node's operational chain share one
database when the hub runs as a node, and neither may touch the other's tables or version; hub processes
opening one database at once (active and standby) migrate it once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import ledger.hub.migrations
import ledger.runtime.migrations
from ledger.hub.migrations import HEAD, VERSION_TABLE, current, lock, migrate
from ledger.hub.tables import metadata
from projections.base import create_engine
from tests.support.migration_chains import migrate_at_once, new_and_migrated_schemas, script_heads, two_databases


@pytest.fixture
def urls(backend: str | None, tmp_path: Path) -> Iterator[list[str]]:
    """Two empty databases of the backend's kind."""
    with two_databases(backend, tmp_path) as found:
        yield found


def test_head_is_the_last_revision_of_the_hub_scripts() -> None:
    assert script_heads(ledger.hub.migrations) == [HEAD]


def test_a_new_hub_gets_what_the_revisions_make_of_an_empty_database(urls: list[str]) -> None:
    new, migrated = new_and_migrated_schemas(ledger.hub.migrations, urls)
    assert new == migrated
    assert set(metadata.tables) <= set(new)


def test_the_hub_chain_and_the_node_chain_share_a_database_without_touching_each_other(urls: list[str]) -> None:
    engine = create_engine(urls[0])
    try:
        ledger.runtime.migrations.upgrade(engine)
        node_tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn, conn.begin():  # the revisions, not the shortcut: Alembic runs here
            lock(conn)
            migrate(conn)
        with engine.connect() as conn:
            assert current(conn) == HEAD
            assert ledger.runtime.migrations.current(conn) == ledger.runtime.migrations.HEAD
            assert conn.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
        found = set(inspect(engine).get_table_names())
        assert node_tables < found and found - node_tables == {*metadata.tables, VERSION_TABLE}
        assert ledger.runtime.migrations.upgrade(engine) == ledger.runtime.migrations.HEAD  # the node: nothing to do
    finally:
        engine.dispose()


def test_hub_processes_opening_one_database_at_once_migrate_it_once(urls: list[str]) -> None:
    assert migrate_at_once("ledger.hub.migrations", urls[0], 3) == sorted(["None"] + [repr(HEAD)] * 2)
