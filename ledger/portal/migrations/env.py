"""Alembic environment of the portal's tables: run only by :func:`ledger.portal.migrations.upgrade`, on a
connection it holds (in a transaction, under the lock); its own version table."""

from __future__ import annotations

from alembic import context

from ledger.portal.migrations import VERSION_TABLE
from ledger.portal.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the portal's migrations run when its store is opened (ledger.portal.migrations.upgrade)")


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # a table not the portal's is never dropped here, whoever else wrote to this database
    return not (type_ == "table" and reflected and compare_to is None)


context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE, include_object=_ours)
with context.begin_transaction():
    context.run_migrations()
