"""What databases made before 7b68d94 hold differently from the baseline.

* ``ingest_pending`` was keyed by (stream, version) until 27a5304; now every event waiting for one place is
  kept under its own leaf hash. The rows held there keep waiting, each given the leaf hash of its envelope.
* ``parked_messages.reason`` was ``VARCHAR(2000)`` until 8e4b75b (a reason quoting a peer's long header field
  could not be parked on PostgreSQL); now ``TEXT``. SQLite never enforced the length: nothing to do there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _leaf(raw: bytes) -> str:
    from ledger.log.envelope import Envelope

    try:
        return Envelope.from_bytes(raw).hash_hex
    except Exception:  # unreadable bytes are refused when released; any distinct key keeps the row till then
        return hashlib.sha256(raw).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "leaf" not in {c["name"] for c in inspector.get_columns("ingest_pending")}:
        old = sa.table(
            "ingest_pending", sa.column("stream"), sa.column("version"), sa.column("envelope", sa.LargeBinary)
        )
        rows = [
            {"stream": s, "version": v, "leaf": _leaf(bytes(e)), "envelope": bytes(e)}
            for s, v, e in bind.execute(sa.select(old.c.stream, old.c.version, old.c.envelope))
        ]
        # recreated rather than altered: SQLite cannot change a primary key in place
        op.rename_table("ingest_pending", "ingest_pending_old")
        if bind.dialect.name == "postgresql":  # the new table's key takes the usual name
            op.execute("ALTER INDEX ingest_pending_pkey RENAME TO ingest_pending_old_pkey")
        new = op.create_table(
            "ingest_pending",
            sa.Column("stream", sa.String(36), primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True),
            sa.Column("leaf", sa.String(64), primary_key=True),
            sa.Column("envelope", sa.LargeBinary, nullable=False),
        )
        if rows:
            op.bulk_insert(new, rows)
        op.drop_table("ingest_pending_old")
    if bind.dialect.name == "postgresql":
        op.alter_column("parked_messages", "reason", type_=sa.Text, existing_nullable=False)


def downgrade() -> None:
    raise NotImplementedError("a node's operational tables are never migrated back: restore the backup instead")
