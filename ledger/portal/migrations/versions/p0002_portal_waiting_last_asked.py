"""``portal_waiting.last_asked``: when a waiting page's wire key was last asked for (the re-ask timer,
linkage.delivery_keys.resend_after_seconds; 097da2c0).

The code of 097da2c0 added it by ``ALTER TABLE`` when the store was opened, so a portal database made before this
chain may have it already: added only where missing, NULL in the rows kept before (``PortalStore.overdue`` then
counts from when the page was set aside).

Revision ID: p0002
Revises: p0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "last_asked" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("portal_waiting")}:
        op.add_column("portal_waiting", sa.Column("last_asked", sa.String(40), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the portal's tables are never migrated back: restore the backup instead")
