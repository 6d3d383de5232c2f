"""``ingest_pending.held_at``: when an event was first held, so that a peer's flag change waiting for the roster
event that certifies its staff keys waits a bounded time (consumers.pending.ROSTER_HOLD). Rows already held
keep waiting without one (they wait for a gap, which has no bound).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "held_at" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("ingest_pending")}:
        op.add_column("ingest_pending", sa.Column("held_at", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("ingest_pending", "held_at")
