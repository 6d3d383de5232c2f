"""An agency node in hub mode joins the consultation (issue 19/20, consumers/linkage_decisions.py): what the hub
said about a held routed query (advice relayed, escalations), the two staff signatures of its four-eyes decision,
and the advice this agency's staff gave as holder.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_case_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hub_request_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("advice", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_decisions",
        sa.Column("local_request_id", sa.String(36), primary_key=True),
        sa.Column("act", sa.String(12), primary_key=True),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(100), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("statement", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_advice",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("advice", sa.String(24), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("advised_at", sa.String(40), nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("linkage_advice", "linkage_decisions", "linkage_case_notes"):
        op.drop_table(table)
