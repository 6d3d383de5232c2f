"""Handovers through the hub at an agency node in hub mode (consumers/linkage_moves.py): the hub's requests to
take over protection, and its word that the new municipality took it over; protection-body requests routed to a
municipality, and the steps of their answers relayed to the body.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_handovers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("to_agency", sa.String(32), nullable=False),
        sa.Column("moved_on", sa.String(10), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("ix_linkage_handovers_subject", "linkage_handovers", ["subject"])

    op.create_table(
        "linkage_body_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("body", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_body_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("body_request_id", sa.String(32), nullable=False),
        sa.Column("municipality", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("flag_request_id", sa.String(32), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("on", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("linkage_body_outcomes")
    op.drop_table("linkage_body_requests")
    op.drop_index("ix_linkage_handovers_subject", table_name="linkage_handovers")
    op.drop_table("linkage_handovers")
