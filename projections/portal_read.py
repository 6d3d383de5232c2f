"""The Mynaportal read path with its statements built once (figure "portal view").

Building ~6 SQLAlchemy statements, checking connections out of the pool and asking the projector where it
stands cost milliseconds per view, against a 2 ms target for a subject among millions of records. Here the
person's pseudonyms, the proxy check and the ``NON_DISCLOSURE`` cutoff are subqueries of three statements
built once; on SQLite they run on a per-thread read-only ``sqlite3`` connection (as
:class:`projections.flag_state.NationwideState` does). The rules are those of :mod:`projections.views`:
the same aliases, the same cutoff (any interval of any pseudonym, open ones ending never), the same order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Select, bindparam, func, literal, select, union
from sqlalchemy.sql.elements import ColumnElement

from projections.base import tracking
from projections.flag_state import subject_alias
from projections.portal import OPEN_END, flag_intervals, portal_proxies, portal_records

__all__ = ["PortalReader", "RecordRow", "nd_cutoff"]

ND = "NON_DISCLOSURE"
# request_id, created_at, querier, provider, procedure, legal_item, info_kind, status
RecordRow = tuple[str, str, str, str, str, int, str, str]


def _aliases(name: str) -> Select[Any]:
    """Every pseudonym of the person the pseudonym bound to ``name`` names (as ``views.aliases``)."""
    person = func.coalesce(
        select(subject_alias.c.person).where(subject_alias.c.pseudonym == bindparam(name)).scalar_subquery(),
        bindparam(name),
    )
    return select(union(
        select(bindparam(name).label("p")),
        select(person.label("p")),
        select(subject_alias.c.pseudonym.label("p")).where(subject_alias.c.person == person),
    ).subquery().c.p)


def _in_aliases(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column.in_(_aliases(name))


def nd_cutoff(name: str) -> ColumnElement[Any]:
    """Records created before this instant are hidden: the latest end of any ``NON_DISCLOSURE`` interval
    on any pseudonym of the person (open ones end never); "" (hides nothing) if there was none."""
    latest = select(func.max(func.coalesce(flag_intervals.c.ended, OPEN_END))).where(
        _in_aliases(flag_intervals.c.subject, name) & (flag_intervals.c.flag == literal(ND))
    ).scalar_subquery()
    return func.coalesce(latest, literal(""))


class _Prepared:
    """One statement: executed through SQLAlchemy, or compiled once for SQLite's positional parameters."""

    def __init__(self, stmt: Any, engine: Engine) -> None:
        self.stmt = stmt
        self.sql = ""
        self.order: tuple[str, ...] = ()
        self.fixed: dict[str, Any] = {}  # literals of the statement (the flag name, the empty cutoff)
        if engine.dialect.name == "sqlite":
            compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
            self.sql = str(compiled)
            self.order = tuple(compiled.positiontup or ())
            self.fixed = {k: b.value for k, b in compiled.binds.items() if b.value is not None}

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params[k] if k in params else self.fixed[k] for k in self.order)


class PortalReader:
    """Access and visible records of one subject for one viewer, with the projections caught up first."""

    def __init__(self, engine: Engine, names: Sequence[str], last_event: Callable[[], int],
                 catch_up: Callable[[], object]) -> None:
        self.engine = engine
        self.names = tuple(names)
        self.last_event = last_event
        self.catch_up = catch_up
        self._aliases = _Prepared(_aliases("s"), engine)
        self._proxy = _Prepared(
            select(func.count()).select_from(portal_proxies).where(
                _in_aliases(portal_proxies.c.subject, "s") & _in_aliases(portal_proxies.c.proxy, "v")
                & portal_proxies.c.active.is_(True)),
            engine)
        r = portal_records.c
        self._records = _Prepared(
            select(r.request_id, r.created_at, r.querier, r.provider, r.procedure, r.legal_item, r.info_kind,
                   r.status)
            .where(_in_aliases(r.subject, "s") & (r.created_at >= nd_cutoff("s")))
            .order_by(r.created_at, r.request_id),
            engine)
        self._positions = _Prepared(select(tracking.c.name, tracking.c.position), engine)
        self._sqlite_path: str | None = None
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._sqlite_path = engine.url.database
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            assert self._sqlite_path is not None
            db = sqlite3.connect(self._sqlite_path, timeout=30)
            db.execute("PRAGMA query_only = 1")
            self._local.db = db
        return db

    def _run(self, q: _Prepared, params: Mapping[str, Any]) -> list[Any]:
        if self._sqlite_path is None:
            with self.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(q.stmt, dict(params))]
        return self._db().execute(q.sql, q.args(params)).fetchall()

    def fresh(self) -> None:
        """Reads follow writes: apply events not yet projected (the full catch-up only when one is behind).

        The tracking table is read each time, not remembered, so a reset by another process is seen."""
        at = dict(self._run(self._positions, {}))
        behind = min((int(at.get(n, 0)) for n in self.names), default=0)
        if self.last_event() > behind:
            self.catch_up()

    def view(self, viewer: str, subject: str) -> tuple[str, list[RecordRow]]:
        """("self" | "proxy" | "none", the visible records' rows in display order) — pseudonyms in."""
        subjects = {str(p) for (p,) in self._run(self._aliases, {"s": subject})}
        if viewer in subjects:
            access = "self"
        else:
            (n,) = self._run(self._proxy, {"s": subject, "v": viewer})[0]
            access = "proxy" if n else "none"
        if access == "none":
            return access, []
        return access, self._run(self._records, {"s": subject})
