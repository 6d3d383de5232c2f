"""The staff roster events each agency sends the hub (ledger.linkage.staff_rosters), kept in the agency's stream
order: the hub folds them into the roster that checks the four eyes of the agency's staff decisions.

Revision ID: h0007
Revises: h0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0007"
down_revision = "h0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_rosters",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_rosters")
