"""After an erasure (issue 22): nothing of the erased person's content left in a file of the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.runtime.bootstrap import Node

__all__ = ["scrub_after_erasure"]


def scrub_after_erasure(node: Node) -> int:
    """What the erased keys' events left in the views goes: every projection rebuilt from the log (erased events
    project as erased: not at all), then the views' freed pages dropped — SQLite: ``VACUUM`` and the WAL
    truncated; PostgreSQL: ``VACUUM FULL`` of the projections' tables (rewritten, the old files unlinked) — so no
    copy of an erased person's content stays in a file of the node. The log itself deleted nothing (an erased
    event stays, as ciphertext under a destroyed key). The PostgreSQL server's own WAL is the cluster's to recycle
    (docs/erasure.md). Returns the events the rebuild applied."""
    applied = node.projector.rebuild()
    engine = node.engine
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        names = sorted({t.name for p in node.projector.projections for t in p.tables})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in names:
                conn.exec_driver_sql(f'VACUUM FULL "{name}"')
    return applied
