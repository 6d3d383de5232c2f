"""The portal's delivery keys an agency node took from their signed announcements (``linkage_delivery_keys``), and
the wire keys the portal asked it to send again (``linkage_key_resends``) — issue 22, docs/erasure.md "copies on
the wire": the node seals to the newest announced key with no change to config.json, and re-sends a lost key
message while the person is not erased.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_delivery_keys",
        sa.Column("serial", sa.BigInteger, primary_key=True),
        sa.Column("delivery", sa.String(200), nullable=False),
        sa.Column("made_at", sa.String(40), nullable=False),
        sa.Column("notice", sa.LargeBinary, nullable=False),
        sa.Column("taken_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "linkage_key_resends",
        sa.Column("ref", sa.String(32), primary_key=True),
        sa.Column("asked_at", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("linkage_key_resends")
    op.drop_table("linkage_delivery_keys")
