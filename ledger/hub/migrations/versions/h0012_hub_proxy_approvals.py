"""Holders' approvals of a named proxy for a named person (issue 19, ledger.hub.proxy_approvals).

Revision ID: h0012
Revises: h0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0012"
down_revision = "h0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_proxy_approvals",
        sa.Column("holder", sa.String(32), primary_key=True),
        sa.Column("person", sa.String(33), primary_key=True),
        sa.Column("proxy", sa.String(33), primary_key=True),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hub_proxy_approvals_seq", "hub_proxy_approvals", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_hub_proxy_approvals_seq", table_name="hub_proxy_approvals")
    op.drop_table("hub_proxy_approvals")
