"""What the hub fed the portal: the sequence read up to, the last page's digest per portal code, the links fed.

Revision ID: h0003
Revises: h0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0003"
down_revision = "h0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_portal_mark",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hub_portal_sent",
        sa.Column("code", sa.String(33), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
    )
    op.create_table("hub_portal_links", sa.Column("old", sa.String(33), primary_key=True))


def downgrade() -> None:
    for table in ("hub_portal_links", "hub_portal_sent", "hub_portal_mark"):
        op.drop_table(table)
