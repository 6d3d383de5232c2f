"""The SQL engines and storage errors every database of a node shares: the views', the hub's, the portal's.

Kept below the application and the projections so that the hub and the portal, which must read no agency's
ledger or views, open their databases without importing either (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ledger.capacity import PoolSizes, retry_while, retry_while_server_full
from ledger.errors import Code, StorageError, is_disk_full

__all__ = ["create_engine", "open_tables", "storage_error", "upsert", "with_driver"]


def create_engine(url: str, pools: PoolSizes | None = None) -> Engine:
    """The views' engine. ``pools`` (PostgreSQL): connections kept open and opened beyond them when busy; a
    connection refused because the server is full is tried again (``ledger.capacity``)."""
    if url.startswith("sqlite"):
        engine = sa_create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    sizes = {"pool_size": pools.size, "max_overflow": pools.overflow} if pools is not None else {}
    engine = sa_create_engine(url, pool_pre_ping=True, **sizes)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return retry_while_server_full(lambda: dialect.connect(*cargs, **cparams))

    return engine


def _wal(cur: Any) -> None:
    """Put the database in WAL mode, waiting while another process holds it. Switching a new database's
    journal may answer "database is locked" at once, without the busy timeout (found with four processes
    opening one new database together: the node, its follower and two commands start this way)."""
    retry_while(lambda: cur.execute("PRAGMA journal_mode=WAL"), _locked, wait=30.0)


def _locked(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert or update by primary key, one executemany for all rows."""
    if not rows:
        return
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(rows[0]), tuple(keys)), list(rows))


@lru_cache(maxsize=512)
def _upsert_statement(dialect: str, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    """Built once per shape: building the construct cost more than executing it for the few rows of a
    Kafka poll (figure "nationwide propagation")."""
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    updates = {c: ins.excluded[c] for c in columns if c not in keys}
    return (
        ins.on_conflict_do_update(index_elements=list(keys), set_=updates)
        if updates
        else (ins.on_conflict_do_nothing(index_elements=list(keys)))
    )


def storage_error(what: str, exc: Exception, then: str = "") -> StorageError:
    """The views database failed: a StorageError saying what to do (``disk_full`` when its disk is full)."""
    if is_disk_full(exc):
        return StorageError(
            f"{what}: the disk holding the views database is full ({exc}); nothing was kept. Free space on "
            "that filesystem (or grow the volume), then repeat the command",
            code=Code.DISK_FULL,
        )
    return StorageError(f"{what}: {exc}" + (f"; {then}" if then else ""))


def with_driver(url: str) -> str:
    """``url`` naming the PostgreSQL driver the project ships (psycopg 3), as SQLAlchemy needs it spelt."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    return url


def open_tables(url: str, tables: MetaData, what: str) -> Engine:
    """An engine on ``url`` with ``tables`` created where missing: a store with no migration chain yet (a
    witness's)."""
    engine = create_engine(with_driver(url))
    try:
        tables.create_all(engine)
    except SQLAlchemyError as exc:
        raise storage_error(f"cannot create {what}", exc) from exc
    return engine
