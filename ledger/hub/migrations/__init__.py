"""Schema migrations of the hub's tables (:mod:`ledger.hub.tables`): their own Alembic chain.

The hub's tables live only in the hub's database, next to the node's operational tables when the hub runs as a
node; so their chain is separate from ``ledger.runtime.migrations`` and records its revision in its own version
table, ``hub_alembic_version``. Otherwise it works as the node's does (``ledger.migration_chain``): :func:`upgrade`
runs when the hub's store is opened and migrates once, whoever opens the database first.

A new revision (from the repository's root)::

    alembic -c <(printf '[alembic]\\nscript_location = ledger/hub/migrations\\n') revision --rev-id h0003 -m …

then set :data:`HEAD` to it (a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Table

from ledger.migration_chain import MigrationChain

__all__ = ["HEAD", "VERSION_TABLE", "current", "lock", "migrate", "upgrade"]

HEAD = "h0023"
VERSION_TABLE = "hub_alembic_version"


def _tables() -> Sequence[Table]:
    from ledger.hub.tables import metadata

    return list(metadata.sorted_tables)


_CHAIN = MigrationChain(
    what="the hub's tables",
    head=HEAD,
    lock_key=0x666C686D,  # "flhm"
    version_table=VERSION_TABLE,
    scripts=Path(__file__).parent,
    tables=_tables,
    then="nothing of the migration was kept — fix the database and retry",
)
current = _CHAIN.current
upgrade = _CHAIN.upgrade
lock = _CHAIN.lock
migrate = _CHAIN.migrate
