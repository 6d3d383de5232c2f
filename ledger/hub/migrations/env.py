"""Alembic environment of the hub's tables: run only by :func:`ledger.hub.migrations.upgrade`, on a connection it
holds (in a transaction, under the lock); its own version table, apart from the node's operational chain."""

from __future__ import annotations

from alembic import context

from ledger.hub.migrations import VERSION_TABLE
from ledger.hub.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the hub's migrations run when its store is opened (ledger.hub.migrations.upgrade)")


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # one database may hold the node's tables too: they are the node's chain's business, never dropped here
    return not (type_ == "table" and reflected and compare_to is None)


context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE, include_object=_ours)
with context.begin_transaction():
    context.run_migrations()
