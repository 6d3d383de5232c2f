"""Agencies' approved erasures the hub applied (issue 22, ledger.hub.erasure).

Revision ID: h0011
Revises: h0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0011"
down_revision = "h0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_erasures",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("erasure_id", sa.String(32), nullable=False),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.UniqueConstraint("agency", "erasure_id", name="uq_hub_erasures_agency"),
    )
    op.create_index("ix_hub_erasures_person", "hub_erasures", ["person", "seq"])


def downgrade() -> None:
    op.drop_index("ix_hub_erasures_person", table_name="hub_erasures")
    op.drop_table("hub_erasures")
