"""Baseline: the operational tables and the projections' positions as the code of 7b68d94 created them.

Databases made before migrations existed hold some or all of these already (``relay_marks`` came after the
others, so an early node lacks it): each table is created only where missing, which adopts such a database
without claiming a table it does not have. What those older databases hold differently is 0002's work.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables(meta: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            "projection_tracking",
            meta,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("position", sa.BigInteger, nullable=False),
        ),
        sa.Table(
            "relay_position",
            meta,
            sa.Column("topic", sa.String(200), primary_key=True),
            sa.Column("position", sa.BigInteger, nullable=False),
        ),
        sa.Table(
            "relay_marks",
            meta,
            sa.Column("topic", sa.String(200), primary_key=True),
            sa.Column("partition", sa.Integer, primary_key=True),
            sa.Column("offset", sa.BigInteger, nullable=False),
            sa.Column("digest", sa.String(64), nullable=False),
        ),
        sa.Table(
            "parked_messages",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.String(40), nullable=False),
            sa.Column("code", sa.String(40), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("source", sa.String(200), nullable=False),
            sa.Column("envelope", sa.LargeBinary, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
        ),
        sa.Table(
            "ingest_pending",
            meta,
            sa.Column("stream", sa.String(36), primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True),
            sa.Column("leaf", sa.String(64), primary_key=True),
            sa.Column("envelope", sa.LargeBinary, nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in _tables(sa.MetaData()):
        if table.name not in existing:
            table.create(bind)


def downgrade() -> None:
    for table in reversed(_tables(sa.MetaData())):
        op.drop_table(table.name)
