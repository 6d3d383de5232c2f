"""The projections' bookkeeping tables and each projection's schema fingerprint.

A projection's tables are not migrated: they hold nothing the log does not, so when a projection's definition
changes its tables are dropped, recreated and rebuilt from the log instead (``Projector.sync_schema``). What
tells a changed definition is the fingerprint stored per projection in ``projection_schema``: a hash of the DDL
of its tables (and their indexes) as this database's dialect would create them, and of the projection's
``schema_version``, which is raised when the meaning of its rows changes while the tables stay as they were.

These two tables are the projections' own and live apart from the projection tables' ``metadata``; they are
migrated with the node's operational tables (``ledger/runtime/migrations``), never dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import BigInteger, Column, MetaData, String, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = ["fingerprint", "projection_schema", "state_metadata", "tracking"]

state_metadata = MetaData()

tracking = Table(
    "projection_tracking",
    state_metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

projection_schema = Table(
    "projection_schema",
    state_metadata,
    Column("name", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)


def fingerprint(name: str, schema_version: int, tables: Sequence[Table], dialect: Dialect) -> str:
    return _fingerprint(name, schema_version, tuple(tables), dialect.name, dialect)


@lru_cache(maxsize=64)
def _fingerprint(name: str, schema_version: int, tables: tuple[Table, ...], _: str, dialect: Dialect) -> str:
    """Computed once per projection and dialect in a process: every node open asks (a one-shot command too)."""
    digest = hashlib.sha256(f"{name}\n{schema_version}\n".encode())
    for table in tables:
        digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
    return digest.hexdigest()
