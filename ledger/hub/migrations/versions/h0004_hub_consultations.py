"""The consultation beyond delivery: holders consulted with their deadline and advice, escalations raised,
four-eyes decisions checked.

Revision ID: h0004
Revises: h0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0004"
down_revision = "h0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_consultations",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(32), primary_key=True),
        sa.Column("deadline", sa.BigInteger, nullable=False),
        sa.Column("advice", sa.String(24)),
    )
    op.create_index("ix_hub_consultations_deadline", "hub_consultations", ["deadline"])
    op.create_table(
        "hub_escalations",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("reason", sa.String(24), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hub_decisions",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("advice", sa.String(24), nullable=False),
        sa.Column("basis", sa.String(24), nullable=False),
        sa.Column("first_key", sa.String(100), nullable=False),
        sa.Column("second_key", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    for table in ("hub_decisions", "hub_escalations", "hub_consultations"):
        op.drop_table(table)
