"""The keyed check of the hub's VRF proof kept with each registration (``linkage_registrations.person_check``),
so an agency node in hub mode checks the proof that answers a registration without keeping the number
(issue #19, docs/linkage.md). Rows kept before have none: their answers are refused, the key not relied on.

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("linkage_registrations", sa.Column("person_check", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("linkage_registrations") as batch:
        batch.drop_column("person_check")
