"""The hub's flag map in its loop (issue #20): each person's VRF map key beside the person id, and the map heads
the hub signed (so a restarted hub continues its own history of heads instead of signing a second one).

Revision ID: h0005
Revises: h0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0005"
down_revision = "h0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_person_keys",
        sa.Column("person", sa.String(33), primary_key=True),
        sa.Column("map_key", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "hub_heads",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("head", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in ("hub_heads", "hub_person_keys"):
        op.drop_table(table)
