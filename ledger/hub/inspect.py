"""A person's reads of the hub's database, each recorded before it happens.

The hub's tables hold routing metadata — who protects which person id, who asked whom — and nothing an
operator needs to browse: a read is an investigation or a repair. :func:`inspect_table` writes an access record
(who, when, why, which table) in ``hub_access`` and commits it, and only then reads; if the record cannot be
written, nothing is read. :func:`accesses` lists the records, and reading them is recorded too.

What this does not stop: a person with the database's credentials who bypasses it (``psql``). The database's
own audit (PostgreSQL's ``log_statement``/pgaudit, the hub's role granted no direct login) closes that; this is
the path the hub's tools take (docs/accountable-hub.md, the hub insider).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger import clock
from ledger.domain import bounds
from ledger.errors import InputError
from ledger.hub.tables import READER, REASON, hub_access, metadata
from ledger.storage import storage_error

__all__ = ["Access", "accesses", "inspect_table", "record_access"]

MAX_ROWS = 10_000  # one read; a larger one is an export, not an inspection


@dataclass(frozen=True)
class Access:
    at: str
    who: str
    reason: str
    what: str


def record_access(engine: Engine, who: str, reason: str, what: str, now: Callable[[], datetime] = clock.now) -> None:
    """Write and commit the record of ``who`` reading ``what`` for ``reason``."""
    row = {
        "at": now().isoformat(),
        "who": bounds.check_text("who", who, bounds.Bound(READER, 1)),
        "reason": bounds.check_text("reason", reason, bounds.Bound(REASON, 1)),
        "what": bounds.check_text("what", what, bounds.Bound(READER, 1)),
    }
    try:
        with engine.begin() as conn:
            conn.execute(insert(hub_access).values(**row))
    except SQLAlchemyError as exc:
        raise storage_error("cannot record a read of the hub's database", exc, "nothing was read") from exc


def inspect_table(
    engine: Engine, who: str, reason: str, table: str, now: Callable[[], datetime] = clock.now
) -> list[dict[str, Any]]:
    """Every row of the hub's ``table`` (at most :data:`MAX_ROWS`), read by ``who`` for ``reason``: the access is
    recorded first."""
    found = metadata.tables.get(table)
    if found is None:
        raise InputError(f"the hub has no table {table[:40]!r}", field="table")
    record_access(engine, who, reason, table, now)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(found).limit(MAX_ROWS))]
    except SQLAlchemyError as exc:
        raise storage_error(f"cannot read the hub's {table}", exc) from exc


def accesses(engine: Engine, who: str, reason: str, now: Callable[[], datetime] = clock.now) -> list[Access]:
    """The access records, oldest first — this read recorded among them."""
    record_access(engine, who, reason, hub_access.name, now)
    a = hub_access.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(a.at, a.who, a.reason, a.what).order_by(a.id)).all()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's access records", exc) from exc
    return [Access(str(at), str(w), str(r), str(what)) for at, w, r, what in rows]
