"""An agency keeps its own held value of each person's map key, never the key (docs/linkage.md, key hygiene).

The flag map's key for a person is one value at every agency, so kept as it was (``agency_map_keys.map_key``)
it let two colluding insiders at two agencies join their data on it. Each kept key is replaced by
``ledger.linkage.person_keys.held_key(agency, key)`` — agency-specific and one-way; the checks compare the key a
hub message names by hashing it the same way. Not reversible: the keys are gone (a downgrade keeps the held
values, which the older code would take for keys and so answer every routed query by staff — never wrongly).

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

_HELD = b"flagledger/person-key/held/1\x00"  # as ledger.linkage.person_keys.held_key (a migration stays frozen)


def upgrade() -> None:
    keys = sa.table(
        "agency_map_keys",
        sa.column("agency", sa.String),
        sa.column("code", sa.String),
        sa.column("map_key", sa.LargeBinary),
    )
    conn = op.get_bind()
    for agency, code, key in conn.execute(sa.select(keys.c.agency, keys.c.code, keys.c.map_key)).all():
        held = hashlib.sha256(_HELD + str(agency).encode() + b"\x00" + bytes(key)).digest()
        conn.execute(sa.update(keys).where((keys.c.agency == agency) & (keys.c.code == code)).values(map_key=held))


def downgrade() -> None:
    pass
