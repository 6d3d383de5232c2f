"""Witnesses' cosignatures of the hub's map heads, kept as evidence and attached to routing decisions
(docs/accountable-hub.md, "Heads cosigned before use").

Revision ID: h0010
Revises: h0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0010"
down_revision = "h0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_cosignatures",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_cosignatures")
