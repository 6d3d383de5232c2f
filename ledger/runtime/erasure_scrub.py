"""After an erasure (issue 22): nothing of the erased person's content left in a file of the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.runtime.bootstrap import Node

__all__ = ["scrub_after_erasure"]


def scrub_after_erasure(node: Node) -> int:
    """What the erased keys' events left in the views goes: every projection rebuilt from the log (erased events
    project as erased), then the freed pages of the node's SQLite files dropped (``VACUUM``) and their WAL
    truncated, so no copy of an erased person's content stays in a file of the data directory. On PostgreSQL the
    views' tables are vacuumed (``VACUUM FULL``: rewritten); the server's own WAL is the database's to recycle
    (docs/erasure.md). Returns the events the rebuild applied."""
    from sqlalchemy import text

    applied = node.projector.rebuild()
    engine = node.engine
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM FULL"))
    _vacuum_event_store(node)
    return applied


def _vacuum_event_store(node: Node) -> None:
    env = node.app.env
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite":
        return  # PostgreSQL: the log keeps only ciphertext of erased events; nothing there to scrub
    import sqlite3

    db = sqlite3.connect(str(env["SQLITE_DBNAME"]), isolation_level=None)
    try:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
