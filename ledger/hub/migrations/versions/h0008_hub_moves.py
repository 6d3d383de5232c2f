"""Residence changes of protected people as their municipalities report them through the hub (ledger.hub.moves):
the handover of protection in hub mode; who made each number-change link, so only it undoes the link
(ledger.hub.links); and protection-body requests routed to a municipality (ledger.hub.body_requests).

Revision ID: h0008
Revises: h0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0008"
down_revision = "h0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_moves",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("move_id", sa.String(32), nullable=False),
        sa.Column("sender_code", sa.String(33), nullable=False),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("from_agency", sa.String(32), nullable=False),
        sa.Column("to_agency", sa.String(32), nullable=False),
        sa.Column("moved_on", sa.String(10), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("taken", sa.String(64), nullable=False),
        sa.UniqueConstraint("sender", "move_id", name="uq_hub_moves_sender"),
    )
    op.create_index("ix_hub_moves_person", "hub_moves", ["person", "seq"])
    op.create_table(
        "hub_link_makers",
        sa.Column("old", sa.String(33), primary_key=True),
        sa.Column("new", sa.String(33), nullable=False),
        sa.Column("linker", sa.String(32), nullable=False),
    )

    op.create_table(
        "hub_body_requests",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("body", sa.String(32), nullable=False),
        sa.Column("body_request", sa.String(32), nullable=False),
        sa.Column("municipality", sa.String(32), nullable=False),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.UniqueConstraint("body", "body_request", name="uq_hub_body_requests_body"),
    )
    op.create_index("ix_hub_body_requests_person", "hub_body_requests", ["person"])


def downgrade() -> None:
    op.drop_index("ix_hub_body_requests_person", table_name="hub_body_requests")
    op.drop_table("hub_body_requests")
    op.drop_table("hub_link_makers")
    op.drop_index("ix_hub_moves_person", table_name="hub_moves")
    op.drop_table("hub_moves")
