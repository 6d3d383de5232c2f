"""Command-line sessions (``flagledger login``): the node-side half of a session, the staff key sealed under a
secret only the person's session file holds (ledger/runtime/tables.py, ledger/cli/session.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cli_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("sealed", sa.Text, nullable=True),
        sa.Column("ended_at", sa.String(40), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("cli_sessions")
