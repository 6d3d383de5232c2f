"""What an agency's checks of the hub's flag map keep across restarts (issue #20, ledger/runtime/map_keep.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agency_map_keys",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(33), primary_key=True),
        sa.Column("map_key", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "agency_map_heads",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("head", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "agency_map_flags",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(33), primary_key=True),
        sa.Column("flags", sa.String(200), nullable=False),
        sa.Column("filed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "agency_map_unfiled",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("change_id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(33), nullable=False),
        sa.Column("flag", sa.String(24), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
    )
    op.create_table(
        "agency_hub_incidents",
        sa.Column("agency", sa.String(32), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(24), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("evidence", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in ("agency_hub_incidents", "agency_map_unfiled", "agency_map_flags", "agency_map_heads"):
        op.drop_table(table)
    op.drop_table("agency_map_keys")
