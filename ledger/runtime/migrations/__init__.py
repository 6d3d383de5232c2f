"""Schema migrations of the tables a node cannot rebuild from its log (Alembic, configured in code).

:func:`upgrade` runs whenever a node is opened: it brings the operational tables (``ledger.runtime.tables``) and the
projections' bookkeeping (``projection_tracking``, ``projection_schema``) to :data:`HEAD`. A database made
before migrations existed has no ``alembic_version``: the baseline adopts the tables it already holds (see
``versions/0001_baseline.py``) and 0002 converts what older code made differently. Projection tables are not
migrated: a changed projection is dropped and rebuilt from the log (``projections.base.Projector.sync_schema``).

Several processes may open one database at once (the ``node`` loop, a staff command, the API): the migration
runs in one transaction under a lock — a PostgreSQL advisory lock, SQLite's write lock — and the version is
read again under it, so exactly one process migrates and the others find the database at head.

A new revision (the file, from the repository's root)::

    alembic -c <(printf '[alembic]\\nscript_location = ledger/runtime/migrations\\n') revision --rev-id 0005 -m …

then set :data:`HEAD` to it (a test checks the two agree).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from projections.base import storage_error

__all__ = ["HEAD", "current", "upgrade"]

HEAD = "0009"
MIGRATION_LOCK = 0x666C6D67  # the advisory lock key of migrations on PostgreSQL ("flmg")
VERSION_TABLE = "alembic_version"

log = logging.getLogger("flagledger.migrations")


def current(conn: Connection) -> str | None:
    """The revision ``conn``'s database is at (None: never migrated)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> str | None:
    """Migrate ``engine``'s database to :data:`HEAD`; returns the revision it was at (HEAD: nothing done)."""
    try:
        with engine.connect() as conn:
            # the usual open finds the database at head: answered without importing Alembic or taking a lock
            if (found := current(conn)) == HEAD:
                return found
        with engine.connect() as conn, conn.begin():
            _lock(conn)
            found = current(conn)  # again, under the lock: another process may have migrated meanwhile
            if found == HEAD:
                return found
            if found is None and not _holds_any(conn):
                _create_at_head(conn)
            else:
                log.info("migrating the node's operational tables from %s to %s", found or "nothing", HEAD)
                _migrate(conn)
            return found
    except SQLAlchemyError as exc:
        raise storage_error(
            "cannot migrate the node's operational tables",
            exc,
            "nothing of the migration was kept — fix the database and open the node again",
        ) from exc


def _lock(conn: Connection) -> None:
    """Serialise migrations of one database until the end of ``conn``'s transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        return
    # SQLite: a write as the transaction's first statement takes the database's write lock (the driver begins
    # the transaction only before a write); the version table is created for that write, empty, as Alembic
    # would create it, and Alembic then finds it
    _version_table(conn)
    conn.execute(text(f"DELETE FROM {VERSION_TABLE} WHERE 0 = 1"))


def _version_table(conn: Connection) -> None:
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
            f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
        )
    )


def _tables() -> list[Table]:
    from ledger.runtime.tables import metadata as operational
    from projections.schema import state_metadata

    return [*operational.sorted_tables, *state_metadata.sorted_tables]


def _holds_any(conn: Connection) -> bool:
    return bool({t.name for t in _tables()} & set(inspect(conn).get_table_names()))


def _create_at_head(conn: Connection) -> None:
    """A new database: today's tables at once, recorded at head — as Alembic's cookbook advises, and what the
    revisions make of an empty database (``tests/integration/test_migrations.py`` compares the two). It spares
    every new node importing Alembic and running each revision."""
    for table in _tables():
        table.create(conn)
    _version_table(conn)
    conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:head)"), {"head": HEAD})


def _migrate(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = conn  # env.py migrates on it, inside this transaction
    command.upgrade(config, "head")
