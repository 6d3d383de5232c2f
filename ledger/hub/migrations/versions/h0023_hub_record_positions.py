"""A sealed provision record's hiding position: the lower of its provider's stamp and its arrival (issue 19,
docs/linkage.md, "A record late to the hub"; ledger.linkage.hub_seq); and a later outcome's sequence number and
version (ledger.hub.record_outcomes).

Revision ID: h0023
Revises: h0022
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0023"
down_revision = "h0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # records filed before this migration have none (NULL, read as their arrival: as they were hidden until now)
    with op.batch_alter_table("hub_sealed_records") as batch:
        batch.add_column(sa.Column("position", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("updated", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("outcome_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hub_sealed_records") as batch:
        batch.drop_column("outcome_version")
        batch.drop_column("updated")
        batch.drop_column("position")
