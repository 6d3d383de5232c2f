"""The hub's tables have their own Alembic chain (ledger/hub/migrations), on SQLite and PostgreSQL.

Threat: the administrator upgrading a hub. A new hub's tables and an upgraded hub's must be the same (the code
map and the sequence are state nothing can rebuild); the hub's chain and the node's operational chain share one
database when the hub runs as a node, and neither may touch the other's tables or version; hub processes
opening one database at once (active and standby) migrate it once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import ledger.hub.migrations
import ledger.runtime.migrations
from ledger.hub.migrations import HEAD, VERSION_TABLE, current, lock, migrate, upgrade
from ledger.hub.tables import metadata
from projections.base import create_engine
from tests.integration.test_migrations import schema
from tests.support.postgres import temp_database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def urls(backend: str | None, tmp_path: Path) -> Iterator[list[str]]:
    """Two empty databases of the backend's kind."""
    with ExitStack() as stack:
        if backend is None:
            yield [f"sqlite:///{tmp_path / f'{n}.sqlite'}" for n in ("one", "two")]
        else:
            yield [
                stack.enter_context(temp_database()).replace("postgresql://", "postgresql+psycopg://") for _ in range(2)
            ]


def test_head_is_the_last_revision_of_the_hub_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(ledger.hub.migrations.__file__).parent))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]


def test_a_new_hub_gets_what_the_revisions_make_of_an_empty_database(urls: list[str]) -> None:
    new, migrated = (create_engine(u) for u in urls)
    try:
        assert upgrade(new) is None
        with migrated.connect() as conn, conn.begin():
            lock(conn)
            migrate(conn)
        for engine in (new, migrated):
            with engine.connect() as conn:
                assert current(conn) == HEAD
        assert schema(new) == schema(migrated)
        assert set(metadata.tables) <= set(schema(new))
    finally:
        new.dispose()
        migrated.dispose()


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


MIGRATE = """
import sys, time
from ledger.hub.migrations import upgrade
from projections.base import create_engine
engine = create_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print(repr(upgrade(engine)))
"""


def test_hub_processes_opening_one_database_at_once_migrate_it_once(urls: list[str]) -> None:
    start = time.time() + 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, urls[0], str(start)],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 3, [err[-2000:] for _, err in results]
    assert sorted(out.strip() for out, _ in results) == sorted(["None"] + [repr(HEAD)] * 2)
