"""Migrate a database once, whoever opens it first: one Alembic chain, its version table and its lock.

Two chains use it, each in its own version table: the node's operational tables (``ledger.runtime.migrations``)
and the hub's (``ledger.hub.migrations``); one database may hold both. Several processes may open a database at
once (the node loop, a staff command, the API, a hub and its standby): the migration runs in one transaction
under a lock — a PostgreSQL advisory lock, SQLite's write lock — and the version is read again under it, so
exactly one process migrates and the others find the database at head. A new database gets today's tables at
once, recorded at head, as Alembic's cookbook advises (a test per chain compares that with what the revisions
make of an empty database); it spares every new node importing Alembic and running each revision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from ledger.storage import storage_error

__all__ = ["MigrationChain"]


@dataclass(frozen=True)
class MigrationChain:
    what: str  # for messages: "the node's operational tables"
    head: str
    lock_key: int  # the PostgreSQL advisory lock key of this chain
    version_table: str
    scripts: Path  # the chain's directory (env.py, versions/)
    tables: Callable[[], Sequence[Table]]  # today's tables, imported late (the models import this package's users)
    then: str  # what to do when a migration failed

    def current(self, conn: Connection) -> str | None:
        """The revision ``conn``'s database is at (None: never migrated)."""
        if not inspect(conn).has_table(self.version_table):
            return None
        return conn.execute(text(f"SELECT version_num FROM {self.version_table}")).scalar()

    def upgrade(self, engine: Engine) -> str | None:
        """Migrate ``engine``'s database to head; returns the revision it was at (head: nothing done)."""
        try:
            with engine.connect() as conn:
                # the usual open finds the database at head: answered without importing Alembic or taking a lock
                if (found := self.current(conn)) == self.head:
                    return found
            with engine.connect() as conn, conn.begin():
                self.lock(conn)
                found = self.current(conn)  # again, under the lock: another process may have migrated meanwhile
                if found == self.head:
                    return found
                if found is None and not self._holds_any(conn):
                    self._create_at_head(conn)
                else:
                    logging.getLogger("flagledger.migrations").info(
                        "migrating %s from %s to %s", self.what, found or "nothing", self.head
                    )
                    self.migrate(conn)
                return found
        except SQLAlchemyError as exc:
            raise storage_error(f"cannot migrate {self.what}", exc, self.then) from exc

    def lock(self, conn: Connection) -> None:
        """Serialise this chain's migrations of one database until the end of ``conn``'s transaction."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key})
            return
        # SQLite: a write as the transaction's first statement takes the database's write lock (the driver
        # begins the transaction only before a write); the version table is created for that write, empty, as
        # Alembic would create it, and Alembic then finds it
        self._version_table(conn)
        conn.execute(text(f"DELETE FROM {self.version_table} WHERE 0 = 1"))

    def migrate(self, conn: Connection) -> None:
        """Run the revisions on ``conn`` (in its transaction, under :meth:`lock`)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.scripts))
        config.attributes["connection"] = conn  # env.py migrates on it, inside this transaction
        command.upgrade(config, "head")

    def _version_table(self, conn: Connection) -> None:
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {self.version_table} (version_num VARCHAR(32) NOT NULL, "
                f"CONSTRAINT {self.version_table}_pkc PRIMARY KEY (version_num))"
            )
        )

    def _holds_any(self, conn: Connection) -> bool:
        return bool({t.name for t in self.tables()} & set(inspect(conn).get_table_names()))

    def _create_at_head(self, conn: Connection) -> None:
        for table in self.tables():
            table.create(conn)
        self._version_table(conn)
        conn.execute(text(f"INSERT INTO {self.version_table} (version_num) VALUES (:head)"), {"head": self.head})
