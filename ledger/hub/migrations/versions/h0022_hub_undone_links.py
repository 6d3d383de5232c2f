"""Undone number-change links kept, with the hub sequence each was filed and undone at (issue 19,
ledger.hub.links).

Revision ID: h0022
Revises: h0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0022"
down_revision = "h0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # links filed before this migration have no sequence (NULL, read as 0: joined from the start, the safe side)
    with op.batch_alter_table("hub_link_makers") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=True))
    op.create_table(
        "hub_undone_links",
        sa.Column("undone_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("old", sa.String(33), nullable=False),
        sa.Column("new", sa.String(33), nullable=False),
        sa.Column("linked_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hub_undone_links_old", "hub_undone_links", ["old"])
    op.create_index("ix_hub_undone_links_new", "hub_undone_links", ["new"])


def downgrade() -> None:
    op.drop_index("ix_hub_undone_links_new", table_name="hub_undone_links")
    op.drop_index("ix_hub_undone_links_old", table_name="hub_undone_links")
    op.drop_table("hub_undone_links")
    with op.batch_alter_table("hub_link_makers") as batch:
        batch.drop_column("seq")
