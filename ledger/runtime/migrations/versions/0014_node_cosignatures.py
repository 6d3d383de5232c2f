"""An agency node's witnesses' cosignatures of its own checkpoints, kept as evidence (``linkage_cosignatures``),
and the deadline of each flag change the hub acknowledged but has not yet shown (``agency_map_unseen``), so a
restart forgets neither (issue #20, docs/accountable-hub.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_cosignatures",
        sa.Column("witness", sa.String(32), primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(100), nullable=False),
        sa.Column("head", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "agency_map_unseen",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(33), primary_key=True),
        sa.Column("filed_at", sa.BigInteger, nullable=False),
        sa.Column("due", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agency_map_unseen")
    op.drop_table("linkage_cosignatures")
