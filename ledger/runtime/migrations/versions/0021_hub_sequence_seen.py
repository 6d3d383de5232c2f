"""The hub sequence numbers an agency node in hub mode has seen, each with where its log ended then
(``linkage_hub_seen``): a provision record is stamped with the highest seen before it was made (issue 19,
docs/linkage.md "A record late to the hub", ledger.linkage.hub_seq).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_hub_seen",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("linkage_hub_seen")
