"""Card sign-in over HTTP (issue 19, ``ledger.portal.sign_ins``): the one-time challenges handed out, the
signed-in sessions (by their token's digest) and the card serials their issuer revoked.

Revision ID: p0003
Revises: p0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None

CODE = 33


def upgrade() -> None:
    op.create_table(
        "portal_challenges",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(CODE), nullable=False),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_portal_sessions_expires_ms", "portal_sessions", ["expires_ms"])
    op.create_table(
        "portal_card_revocations",
        sa.Column("issuer", sa.String(64), primary_key=True),
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("listed_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the portal's tables are never migrated back: restore the backup instead")
