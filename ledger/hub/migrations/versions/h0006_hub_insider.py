"""The bounded hub insider (issue 20): provision records with contents sealed to the portal, and the record of
every read of the hub's database by a person.

Revision ID: h0006
Revises: h0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0006"
down_revision = "h0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_sealed_records",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("record_id", sa.String(32), nullable=False, unique=True),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("contents", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_hub_sealed_records_person", "hub_sealed_records", ["person", "seq"])
    op.create_table(
        "hub_access",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("what", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_hub_sealed_records_person", table_name="hub_sealed_records")
    for table in ("hub_access", "hub_sealed_records"):
        op.drop_table(table)
