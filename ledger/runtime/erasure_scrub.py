"""After an erasure (issue 22): nothing of the erased person's content left in a file of the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.runtime.bootstrap import Node

__all__ = ["scrub_after_erasure"]


def scrub_after_erasure(node: Node) -> int:
    """What the erased keys' events left in the views goes: every projection rebuilt from the log (erased events
    project as erased: not at all), so no copy of an erased person's content stays in a file of the node.

    Rows deleted the ordinary way would stay on disk: SQLite keeps them in free pages and its WAL (so ``VACUUM``
    and a truncated WAL follow); PostgreSQL keeps dead tuples that even ``VACUUM FULL`` copies while any
    transaction on the server might still see them — so there the projections' tables are emptied with
    ``TRUNCATE`` first (new files; the old ones are cut to nothing at commit, whatever snapshots are open). The
    log itself deleted nothing (an erased event stays, as ciphertext under a destroyed key); the PostgreSQL
    server's own WAL is the cluster's to recycle (docs/erasure.md). Returns the events the rebuild applied."""
    engine = node.engine
    if engine.dialect.name != "sqlite":
        names = sorted({t.name for p in node.projector.projections for t in p.tables})
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{n}"' for n in names))
    applied = node.projector.rebuild()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return applied
