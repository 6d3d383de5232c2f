"""The hub's refusals of moves this agency reported (``move_refused``, ``not_residence``: no one was asked to take
over) get their own table at an agency node, ``linkage_moves_refused``, as the other kinds of the hub's word on a
handover do since 0020 (consumers/linkage_moves.py).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_moves_refused",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("to_agency", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("ix_linkage_moves_refused_subject", "linkage_moves_refused", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_linkage_moves_refused_subject", table_name="linkage_moves_refused")
    op.drop_table("linkage_moves_refused")
