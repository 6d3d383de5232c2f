"""The hub's withdrawn handovers, handed-on words and last-holder warnings get their own tables at an agency node
(``linkage_handovers_withdrawn``, ``linkage_handed_on``, ``linkage_holder_warnings``): until now they were rows
of ``linkage_handovers`` told apart by a ``direction`` of ``wd``, ``on`` or ``lh`` (consumers/linkage_moves.py).
Each kind keeps the columns it has; the rows an older node kept are moved, nothing is dropped.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_TEXT = {"id": 32, "subject": 40, "to_agency": 32, "moved_on": 10, "flags": 64, "at": 40}
# table → (the old direction code, the columns it keeps)
_KINDS = {
    "linkage_handovers_withdrawn": ("wd", ("id", "subject", "to_agency", "moved_on", "flags", "at")),
    "linkage_handed_on": ("on", ("id", "subject", "flags", "at")),
    "linkage_holder_warnings": ("lh", ("id", "subject", "to_agency", "flags", "at")),
}


def upgrade() -> None:
    for table, (direction, columns) in _KINDS.items():
        op.create_table(
            table,
            *(sa.Column(c, sa.String(_TEXT[c]), nullable=False, primary_key=c == "id") for c in columns),
        )
        op.create_index(f"ix_{table}_subject", table, ["subject"])
        names = ", ".join(f'"{c}"' for c in columns)
        op.execute(
            sa.text(
                f'INSERT INTO "{table}" ({names}) SELECT {names} FROM linkage_handovers WHERE direction = :d'
            ).bindparams(d=direction)
        )
        op.execute(sa.text("DELETE FROM linkage_handovers WHERE direction = :d").bindparams(d=direction))


def downgrade() -> None:
    for table, (direction, columns) in _KINDS.items():
        kept = ", ".join(f'"{c}"' if c in columns else "''" for c in ("id", "subject", "to_agency", "moved_on"))
        op.execute(
            sa.text(
                'INSERT INTO linkage_handovers (id, subject, to_agency, moved_on, direction, flags, "at") '
                f'SELECT {kept}, :d, flags, "at" FROM "{table}"'
            ).bindparams(d=direction)
        )
        op.drop_index(f"ix_{table}_subject", table_name=table)
        op.drop_table(table)
