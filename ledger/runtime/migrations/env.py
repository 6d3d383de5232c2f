"""Alembic environment: always run by :func:`ledger.runtime.migrations.upgrade` on a connection it already holds
(in a transaction, under the migration lock), so there is no URL, no ``alembic.ini`` and no offline mode here."""

from __future__ import annotations

from alembic import context

from ledger.runtime.tables import metadata as operational
from projections.base import state_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "flagledger's migrations run when a node is opened (ledger.runtime.migrations.upgrade), not from the alembic "
        "command line"
    )
# the operational tables and the projections' bookkeeping: what `alembic revision --autogenerate` compares
context.configure(connection=connection, target_metadata=[operational, state_metadata])
with context.begin_transaction():
    context.run_migrations()
