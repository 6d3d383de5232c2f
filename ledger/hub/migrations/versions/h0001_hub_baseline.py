"""The hub's first tables: code map, number-change links, the sequence with its leader epoch, flag changes and
provision records in sequence.

Revision ID: h0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_codes",
        sa.Column("holder", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(33), primary_key=True),
        sa.Column("person", sa.String(33), nullable=False),
        sa.UniqueConstraint("person", "holder", name="uq_hub_codes_person_holder"),
    )
    op.create_table(
        "hub_links",
        sa.Column("old", sa.String(33), primary_key=True),
        sa.Column("new", sa.String(33), nullable=False, unique=True),
    )
    op.create_table(
        "hub_sequence",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("last", sa.BigInteger, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("leader", sa.String(200), nullable=False),
    )
    op.create_table(
        "hub_flag_changes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("change_id", sa.String(64), nullable=False, unique=True),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("flag", sa.String(24), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
    )
    op.create_index("ix_hub_flag_changes_person", "hub_flag_changes", ["person", "seq"])
    op.create_table(
        "hub_records",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("record_id", sa.String(64), nullable=False, unique=True),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("querier", sa.String(32), nullable=False),
        sa.Column("procedure", sa.String(200), nullable=False),
        sa.Column("legal_item", sa.Integer, nullable=False),
        sa.Column("info_kind", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("made_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_hub_records_person", "hub_records", ["person", "seq"])


def downgrade() -> None:
    for table in ("hub_records", "hub_flag_changes", "hub_sequence", "hub_links", "hub_codes"):
        op.drop_table(table)
