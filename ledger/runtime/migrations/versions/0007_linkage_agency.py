"""An agency node in hub mode (issue 19): the registrations sealed to the hub, the hub's messages applied, the
bridge's position in the own log, queries asked and routed through the hub, consultations, parked messages
(ledger/runtime/tables.py, consumers/linkage_bridge.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_registrations",
        sa.Column("subject", sa.String(40), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
    )
    op.create_table(
        "linkage_applied",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("applied_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_position",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "linkage_queries",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("querier", sa.String(32), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("procedure", sa.Text, nullable=False),
        sa.Column("legal_item", sa.Integer, nullable=False),
        sa.Column("info_kind", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("asked_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_routed",
        sa.Column("hub_request_id", sa.String(32), primary_key=True),
        sa.Column("local_request_id", sa.String(36), nullable=False, unique=True),
        sa.Column("answered", sa.String(16), nullable=False),
        sa.Column("querier", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("procedure", sa.Text, nullable=False),
        sa.Column("legal_item", sa.Integer, nullable=False),
        sa.Column("info_kind", sa.Text, nullable=False),
        sa.Column("staff_answer", sa.Integer, nullable=False),
        sa.Column("from_position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "linkage_consultations",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("procedure", sa.Text, nullable=False),
        sa.Column("legal_item", sa.Integer, nullable=False),
        sa.Column("info_kind", sa.Text, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_parked",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=True),
    )


def downgrade() -> None:
    for name in (
        "linkage_parked",
        "linkage_consultations",
        "linkage_routed",
        "linkage_queries",
        "linkage_position",
        "linkage_applied",
        "linkage_registrations",
    ):
        op.drop_table(name)
