"""The hub's message loop: applied event ids (replays dropped), parked messages, routed requests, the outbox.

Revision ID: h0002
Revises: h0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0002"
down_revision = "h0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_applied",
        sa.Column("sender", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "hub_parked",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("claimed_sender", sa.String(32)),
        sa.Column("event_id", sa.String(32)),
        sa.Column("code", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "hub_requests",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("querier", sa.String(32), nullable=False),
        sa.Column("querier_request", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("person", sa.String(33), nullable=False),
        sa.Column("staff", sa.Boolean, nullable=False),
        sa.UniqueConstraint("querier", "querier_request", name="uq_hub_requests_querier"),
    )
    op.create_table(
        "hub_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in ("hub_outbox", "hub_requests", "hub_parked", "hub_applied"):
        op.drop_table(table)
