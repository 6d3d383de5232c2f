"""The Mynaportal read path with its statements built once (figure "portal view").

Building SQLAlchemy statements, checking connections out of the pool and asking the projector where it
stands cost milliseconds per view, against a 2 ms target for a subject among millions of records. Here the
statements are built once; on SQLite they run on a per-thread read-only ``sqlite3`` connection.

What decides (whose credentials open whose records, which records the ``NON_DISCLOSURE`` cutoff hides, and
what a shown record says) comes from the verified log (:mod:`projections.verified`): the person's pseudonyms,
proxies and cutoff from :class:`~projections.verified.VerifiedState`, each candidate record from its signed
``Received`` event (:class:`~projections.record_check.RecordCheck`). The views only say which records exist and
their outcome: a row deleted there is missing from the page, a row edited there cannot show a record of
someone else, or one made while the person was protected. The rules are those of :mod:`projections.views`:
any ``NON_DISCLOSURE`` period of any pseudonym (open ones ending never), the same order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, select

from projections.base import tracking
from projections.portal import portal_records
from projections.record_check import RecordFacts
from projections.record_filter import filtered
from projections.verified import Person, VerifiedState

__all__ = ["Facts", "PortalReader", "RecordRow", "candidates_statement"]

# request_id, created_at, querier, provider, procedure, legal_item, info_kind, status
RecordRow = tuple[str, str, str, str, str, int, str, str]
Facts = Callable[[str, int], RecordFacts | None]  # (request id, position) → the signed facts, or None


def candidates_statement() -> Any:
    """One pseudonym's records created at or after a cutoff: (request id, position, status), index order.

    The cutoff only narrows the candidates (a row whose time was moved earlier is merely left out); each one
    is then decided on its signed time."""
    r = portal_records.c
    return (
        select(r.request_id, r.position, r.status)
        .where((r.subject == bindparam("s")) & (r.created_at >= bindparam("c")))
        .order_by(r.created_at, r.request_id)
    )


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

    def __init__(
        self,
        engine: Engine,
        names: Sequence[str],
        last_event: Callable[[], int],
        catch_up: Callable[[], object],
        state: VerifiedState,
        facts: Facts,
    ) -> None:
        self.engine = engine
        self.names = tuple(names)
        self.last_event = last_event
        self.catch_up = catch_up
        self.state = state
        self.facts = facts
        self._records = _Prepared(candidates_statement(), engine)
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
        access, person = self.state.portal_access(viewer, subject)
        if access == "none":
            return access, []
        return access, self.visible(person)

    def visible(self, person: Person) -> list[RecordRow]:
        """The person's records the portal shows: the one filter every channel applies
        (:func:`projections.record_filter.filtered`: made at or after the end of their last ``NON_DISCLOSURE``)."""
        return [
            (f.request_id, f.created_at, f.querier, f.provider, f.procedure, f.legal_item, f.info_kind, status)
            for f, status in filtered(self.records, person).shown
        ]

    def records(self, person: Person, cutoff: str) -> list[tuple[RecordFacts, str]]:
        """(signed facts, outcome) of the person's records made at or after ``cutoff``, in display order."""
        names = set(person.aliases)
        found: dict[str, tuple[RecordFacts, str]] = {}
        for p in person.aliases:
            for rid, position, status in self._run(self._records, {"s": p, "c": cutoff}):
                facts = self.facts(str(rid), int(position))
                if facts is None or facts.subject not in names or facts.created_at < cutoff:
                    continue  # a row the log does not bear out (edited or moved): not shown
                found.setdefault(facts.request_id, (facts, str(status)))
        return sorted(found.values(), key=lambda fs: (fs[0].created_at, fs[0].request_id))
