"""An agency's own reference number (宛名番号) for each person it took in, kept locally (issue #21 console).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_numbers",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(40), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reference_numbers")
