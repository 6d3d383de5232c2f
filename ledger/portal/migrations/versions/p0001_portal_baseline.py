"""Baseline: the portal's tables as the code of 097da2c0 created them (``create_all`` on open), ``last_asked`` aside.

A portal database made before this chain holds some of them already: the first four since the portal existed
(e208de97), ``portal_erasures`` since c3576862, ``portal_waiting`` since b64a9445. Each table is created only
where missing, so such a database is adopted with every row it holds; ``last_asked`` is p0002's.

Revision ID: p0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None

CODE = 33


def _tables(meta: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table("portal_cards", meta, sa.Column("code", sa.String(CODE), primary_key=True)),
        sa.Table(
            "portal_pages",
            meta,
            sa.Column("code", sa.String(CODE), primary_key=True),
            sa.Column("version", sa.BigInteger, nullable=False),
            sa.Column("page", sa.LargeBinary, nullable=False),
        ),
        sa.Table("portal_seen", meta, sa.Column("event_id", sa.String(32), primary_key=True)),
        sa.Table(
            "portal_outbox",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("message", sa.LargeBinary, nullable=False),
        ),
        sa.Table(
            "portal_erasures",
            meta,
            sa.Column("code", sa.String(CODE), primary_key=True),
            sa.Column("version", sa.BigInteger, primary_key=True),
        ),
        sa.Table(
            "portal_waiting",
            meta,
            sa.Column("event_id", sa.String(32), primary_key=True),
            sa.Column("ref", sa.String(32), nullable=False, index=True),
            sa.Column("provider", sa.String(32), nullable=False),
            sa.Column("message", sa.LargeBinary, nullable=False),
            sa.Column("asked_at", sa.String(40), nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in _tables(sa.MetaData()):
        if table.name not in existing:
            table.create(bind)  # with its index (portal_waiting.ref), as create_all made it


def downgrade() -> None:
    raise NotImplementedError("the portal's tables are never migrated back: restore the backup instead")
