"""Mynaportal proxy registrations at the hub (issue 19, ledger.hub.proxy_registrations).

Revision ID: h0018
Revises: h0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0018"
down_revision = "h0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_proxy_registrations",
        sa.Column("person", sa.String(33), primary_key=True),
        sa.Column("proxy", sa.String(33), primary_key=True),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hub_proxy_registrations_seq", "hub_proxy_registrations", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_hub_proxy_registrations_seq", table_name="hub_proxy_registrations")
    op.drop_table("hub_proxy_registrations")
