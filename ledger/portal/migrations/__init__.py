"""Schema migrations of the portal's tables (:mod:`ledger.portal.tables`): their own Alembic chain.

The portal's database holds only the portal's tables; their revision is kept in ``portal_alembic_version`` (not
the node's or the hub's version table, so a database shared by mistake is never read as migrated). It works as
the hub's chain does (``ledger.migration_chain``): :func:`upgrade` runs when the portal's store is opened and
migrates once, whoever opens the database first. A database the portal made before this chain (its tables made
by ``create_all``, ``last_asked`` added by ``ALTER TABLE`` on open or not yet) has tables and no version table:
the first revisions adopt it, creating only what it lacks (p0001, p0002), and keep every row.

A new revision (from the repository's root)::

    alembic -c <(printf '[alembic]\\nscript_location = ledger/portal/migrations\\n') revision --rev-id p0003 -m …

then set :data:`HEAD` to it (a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Table

from ledger.migration_chain import MigrationChain

__all__ = ["HEAD", "VERSION_TABLE", "current", "lock", "migrate", "upgrade"]

HEAD = "p0003"
VERSION_TABLE = "portal_alembic_version"


def _tables() -> Sequence[Table]:
    from ledger.portal.tables import metadata

    return list(metadata.sorted_tables)


_CHAIN = MigrationChain(
    what="the portal's tables",
    head=HEAD,
    lock_key=0x666C706D,  # "flpm"
    version_table=VERSION_TABLE,
    scripts=Path(__file__).parent,
    tables=_tables,
    then="nothing of the migration was kept — fix the database and retry",
)
current = _CHAIN.current
upgrade = _CHAIN.upgrade
lock = _CHAIN.lock
migrate = _CHAIN.migrate
