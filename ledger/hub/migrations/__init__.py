"""Schema migrations of the hub's tables (:mod:`ledger.hub.tables`): their own Alembic chain.

The hub's tables live only in the hub's database, next to the node's operational tables when the hub runs as a
node; so their chain is separate from ``ledger.runtime.migrations`` and records its revision in its own version
table, ``hub_alembic_version``. Otherwise it works as the node's does: :func:`upgrade` runs when the hub's store
is opened, in one transaction under a lock (a PostgreSQL advisory lock, SQLite's write lock), the version read
again under it, so one process migrates and the others find the database at head; a new database gets today's
tables at once, recorded at head (a test compares that with what the revisions make of an empty one).

A new revision (from the repository's root)::

    alembic -c <(printf '[alembic]\\nscript_location = ledger/hub/migrations\\n') revision --rev-id h0003 -m …

then set :data:`HEAD` to it (a test checks the two agree).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from projections.base import storage_error

__all__ = ["HEAD", "VERSION_TABLE", "current", "upgrade"]

HEAD = "h0006"
MIGRATION_LOCK = 0x666C686D  # the advisory lock key of the hub's migrations on PostgreSQL ("flhm")
VERSION_TABLE = "hub_alembic_version"

log = logging.getLogger("flagledger.hub.migrations")


def current(conn: Connection) -> str | None:
    """The revision of the hub's tables in ``conn``'s database (None: never migrated)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> str | None:
    """Migrate the hub's tables in ``engine``'s database to :data:`HEAD`; returns the revision they were at."""
    try:
        with engine.connect() as conn:
            if (found := current(conn)) == HEAD:
                return found
        with engine.connect() as conn, conn.begin():
            lock(conn)
            found = current(conn)
            if found == HEAD:
                return found
            if found is None and not _holds_any(conn):
                _create_at_head(conn)
            else:
                log.info("migrating the hub's tables from %s to %s", found or "nothing", HEAD)
                migrate(conn)
            return found
    except SQLAlchemyError as exc:
        raise storage_error(
            "cannot migrate the hub's tables", exc, "nothing of the migration was kept — fix the database and retry"
        ) from exc


def lock(conn: Connection) -> None:
    """Serialise the hub's migrations of one database until the end of ``conn``'s transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        return
    # SQLite: a write first takes the database's write lock (the driver begins the transaction before a write)
    _version_table(conn)
    conn.execute(text(f"DELETE FROM {VERSION_TABLE} WHERE 0 = 1"))


def _version_table(conn: Connection) -> None:
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
            f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
        )
    )


def _holds_any(conn: Connection) -> bool:
    from ledger.hub.tables import metadata

    return bool(set(metadata.tables) & set(inspect(conn).get_table_names()))


def _create_at_head(conn: Connection) -> None:
    from ledger.hub.tables import metadata

    metadata.create_all(conn)
    _version_table(conn)
    conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:head)"), {"head": HEAD})


def migrate(conn: Connection) -> None:
    """Run the revisions on ``conn`` (in its transaction, under :func:`lock`)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
