"""Handovers through the hub at an agency node in hub mode (consumers/linkage_moves.py): the hub's requests to
take over protection, and its word that the new municipality took it over.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_handovers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("to_agency", sa.String(32), nullable=False),
        sa.Column("moved_on", sa.String(10), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("ix_linkage_handovers_subject", "linkage_handovers", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_linkage_handovers_subject", table_name="linkage_handovers")
    op.drop_table("linkage_handovers")
