"""Schema migrations of the tables a node cannot rebuild from its log (Alembic, configured in code).

:func:`upgrade` runs whenever a node is opened: it brings the operational tables (``ledger.runtime.tables``) and the
projections' bookkeeping (``projection_tracking``, ``projection_schema``) to :data:`HEAD`, once, whoever opens the
database first (``ledger.migration_chain``). A database made before migrations existed has no
``alembic_version``: the baseline adopts the tables it already holds (see ``versions/0001_baseline.py``) and 0002
converts what older code made differently. Projection tables are not migrated: a changed projection is dropped and
rebuilt from the log (``projections.base.Projector.sync_schema``).

A new revision (the file, from the repository's root)::

    alembic -c <(printf '[alembic]\\nscript_location = ledger/runtime/migrations\\n') revision --rev-id 0006 -m …

then set :data:`HEAD` to it (a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Table

from ledger.migration_chain import MigrationChain

__all__ = ["HEAD", "current", "lock", "migrate", "upgrade"]

HEAD = "0022"


def _tables() -> Sequence[Table]:
    from ledger.runtime.tables import metadata as operational
    from projections.schema import state_metadata

    return [*operational.sorted_tables, *state_metadata.sorted_tables]


_CHAIN = MigrationChain(
    what="the node's operational tables",
    head=HEAD,
    lock_key=0x666C6D67,  # "flmg"
    version_table="alembic_version",
    scripts=Path(__file__).parent,
    tables=_tables,
    then="nothing of the migration was kept — fix the database and open the node again",
)
current = _CHAIN.current
upgrade = _CHAIN.upgrade
lock = _CHAIN.lock
migrate = _CHAIN.migrate
