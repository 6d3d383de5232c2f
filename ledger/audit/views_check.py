"""``flagledger audit views``: rebuild every view from the log into a scratch location and compare it with the
live views, row by row, naming the first row that differs.

Security decisions do not read the views (:mod:`projections.verified`), but staff listings, work queues,
timelines and reports do: someone with write access to the views database could hide a held request from a
work queue, a flag from an agency's own list or an event from a timeline. This check finds any such change at
its next run; the node runs it on a schedule (``flagledger node --audit-views-every``).

How it stays exact while the node keeps working:

1. every projection is rebuilt into the scratch location from the verified log up to the log's end as it was
   when the check started (the live views are not touched by the rebuild);
2. the live views are caught up (as any reader does), then read inside one snapshot transaction (SQLite: a
   read transaction; PostgreSQL: ``REPEATABLE READ``), whose tracking table says which log position they
   reflect; the scratch views are caught up to exactly that position;
3. each view table is read from both sides in primary-key order and compared row by row; the first
   difference is named by table and primary key (pseudonyms, ids, codes and times: no value of another
   column is shown), as *missing* (in the rebuild, not in the live views), *extra* (only in the live
   views) or *changed* (with the names of the columns that differ).

The scratch location: on SQLite a new file under ``DATA_DIR/audit/`` (0600, removed afterwards); on
PostgreSQL a new schema in the live database (dropped afterwards); or ``scratch`` — an empty SQLite file or
``postgresql://`` database of your own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, event, func, select, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import SQLAlchemyError

from ledger.audit.replay_target import safe_url
from ledger.errors import InputError, StateConflict, StorageError
from ledger.files import private_dir, private_file
from ledger.storage import with_driver
from projections.base import Projector, bulk_writes, create_engine, tracking
from projections.node import NodeParts
from projections.registry import all_projections

__all__ = ["Difference", "ViewsReport", "check_views", "view_tables"]

Progress = Callable[[str, int, int], None]  # (phase: "rebuild" | "compare", done, total)


@dataclass(frozen=True)
class Difference:
    table: str
    key: dict[str, Any]  # the row's primary key
    kind: str  # "missing" (the live views lack it) | "extra" (only the live views have it) | "changed"
    columns: tuple[str, ...] = ()  # the columns that differ ("changed")

    def __str__(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in self.key.items())
        what = {
            "missing": "in the rebuild from the log, missing from the live views (deleted?)",
            "extra": "in the live views, not in the rebuild from the log (inserted?)",
            "changed": f"differs from the rebuild from the log in {', '.join(self.columns)} (edited?)",
        }[self.kind]
        return f"table {self.table}, row ({key}): {what}"

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": {k: str(v) for k, v in self.key.items()},
            "kind": self.kind,
            "columns": list(self.columns),
            "text": str(self),
        }


@dataclass
class ViewsReport:
    position: int = 0  # the log position both sides reflect
    tables: int = 0
    rows: int = 0  # rows compared (rebuild side)
    first_difference: Difference | None = None
    started_at: str = ""
    seconds: float = 0.0
    scratch: str = ""
    per_table: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.first_difference is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "position": self.position,
            "tables": self.tables,
            "rows": self.rows,
            "first_difference": None if self.first_difference is None else self.first_difference.to_json(),
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "scratch": self.scratch,
        }


def view_tables(node: NodeParts) -> list[Table]:
    """Every table of the node's projections, in projection order."""
    return [t for p in node.projector.projections for t in p.tables]


class _ScratchProjector(Projector):
    """Writes only the scratch views, alone: no advisory lock shared with the live projectors (on PostgreSQL a
    scratch schema lives in the live database, and the rebuild must not hold up the node's projections)."""

    @staticmethod
    def _lock(conn: Connection) -> None:
        return None


# -- the scratch location --------------------------------------------------------------------------------------
@contextmanager
def _scratch(node: NodeParts, scratch: str | None) -> Iterator[tuple[Engine, str]]:
    """An engine on an empty scratch location, and its URL (password hidden); cleaned up afterwards."""
    live = node.config.views_url()
    if scratch is not None:
        engine = _given_scratch(node, scratch, live)
        where = engine.url.render_as_string(hide_password=True)
        try:
            if set(_table_names(engine)) & {t.name for t in view_tables(node)}:
                raise StateConflict(f"{where} already holds views: give an empty scratch database")
            yield engine, where
        finally:
            engine.dispose()
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    if live.startswith("postgresql"):
        schema = f"flagledger_views_check_{stamp.lower()}_{secrets.token_hex(3)}"
        admin = create_engine(live)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            engine = sa_create_engine(live, connect_args={"options": f"-csearch_path={schema}"})
            try:
                yield engine, f"{safe_url(live)} (schema {schema})"
            finally:
                engine.dispose()
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot make the scratch schema in {safe_url(live)}: {exc}") from exc
        finally:
            admin.dispose()
        return
    folder = private_dir(node.config.data_dir / "audit")
    path = private_file(folder / f"views-check-{stamp}.sqlite")
    engine = create_engine(f"sqlite:///{path}")
    try:
        yield engine, str(path)
    finally:
        engine.dispose()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def _given_scratch(node: NodeParts, scratch: str, live: str) -> Engine:
    from ledger.audit.replay_target import same_pg_database

    if "://" in scratch:
        scheme, rest = scratch.split("://", 1)
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            url = with_driver(scratch)
            if live.startswith("postgresql") and same_pg_database(url, live):
                raise InputError(
                    f"{safe_url(url)} is this node's own database: give an empty scratch database "
                    "(or no --scratch: a scratch schema is made in it)"
                )
            return create_engine(url)
        if scheme != "sqlite":
            raise InputError(f"unsupported scratch {safe_url(scratch)}: give a postgresql:// URL or a file path")
        scratch = rest[1:] if rest.startswith("/") else rest
    path = Path(scratch).expanduser().resolve()
    if path in {(node.config.data_dir / n).resolve() for n in ("views.sqlite", "ledger.sqlite")}:
        raise InputError(f"{path} is one of this node's own databases: choose another scratch file")
    if path.is_dir():
        raise InputError(f"{path} is a directory: give a file name for the scratch database")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        private_file(path)
    return create_engine(f"sqlite:///{path}")


def _table_names(engine: Engine) -> list[str]:
    from sqlalchemy import inspect

    try:
        return list(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the scratch database: {exc}") from exc


# -- the live snapshot -------------------------------------------------------------------------------------------
def _snapshot_engine(url: str) -> Engine:
    """An engine whose transactions see one snapshot of the live views from their first read on."""
    if url.startswith("postgresql"):
        return sa_create_engine(url, isolation_level="REPEATABLE READ")
    engine = sa_create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver opens no transaction of its own: we BEGIN below

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")  # a read transaction: one snapshot of the WAL database until it ends

    return engine


def _positions(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    rows = {str(n): int(p) for n, p in conn.execute(select(tracking.c.name, tracking.c.position))}
    return {n: rows.get(n, 0) for n in names}


# -- comparing -------------------------------------------------------------------------------------------------
def _ordered(conn: Connection, table: Table) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(primary key, row) in primary-key order, compared in Python's order: strings by code point (SQLite's
    BINARY collation; PostgreSQL ordered with ``COLLATE "C"``, the same for UTF-8 text)."""
    pk = list(table.primary_key.columns)
    postgres = conn.dialect.name == "postgresql"
    order = [c.collate("C") if postgres and c.type.python_type is str else c for c in pk]
    result = conn.execution_options(stream_results=True, yield_per=1000).execute(select(table).order_by(*order))
    names = [c.name for c in pk]
    for row in result:
        m = dict(row._mapping)
        yield tuple(m[n] for n in names), m


def _compare_table(
    table: Table, rebuilt: Connection, live: Connection, tick: Callable[[], None]
) -> tuple[int, Difference | None]:
    names = [c.name for c in table.primary_key.columns]
    left, right = _ordered(rebuilt, table), _ordered(live, table)
    a, b = next(left, None), next(right, None)
    n = 0
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            return n, Difference(table.name, dict(zip(names, a[0], strict=True)), "missing")
        if a is None or b[0] < a[0]:
            return n, Difference(table.name, dict(zip(names, b[0], strict=True)), "extra")
        if a[1] != b[1]:
            changed = tuple(k for k in a[1] if a[1][k] != b[1].get(k))
            return n, Difference(table.name, dict(zip(names, a[0], strict=True)), "changed", changed)
        n += 1
        tick()
        a, b = next(left, None), next(right, None)
    return n, None


def check_views(
    node: NodeParts,
    *,
    scratch: str | None = None,
    progress: Progress | None = None,
    page: int = 1000,
    attempts: int = 5,
) -> ViewsReport:
    """Rebuild every view into a scratch location and compare it with the live views (see the module)."""
    if not 1 <= page <= 10_000:
        raise InputError("--page must be between 1 and 10000 events")
    report = ViewsReport(started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    t0 = time.monotonic()
    tables = view_tables(node)
    names = [p.name for p in node.projector.projections]
    with _scratch(node, scratch) as (engine, where):
        report.scratch = where
        projector = _ScratchProjector(node.app, engine, all_projections(), page=page)
        try:
            projector.create_tables()
            end = node.app.max_position()
            rebuild: Callable[[int, int], None] | None = (
                (lambda done, total: progress("rebuild", done, total)) if progress is not None else None
            )
            with engine.connect() as conn, bulk_writes(conn):
                projector._catch_up(conn, rebuild, end)
            live_engine = _snapshot_engine(node.config.views_url())
            try:
                report = _compare(node, projector, engine, live_engine, tables, names, end, report, progress, attempts)
            finally:
                live_engine.dispose()
        except SQLAlchemyError as exc:
            raise StorageError(f"audit views failed: {exc}; nothing was changed, run it again") from exc
    report.seconds = time.monotonic() - t0
    return report


class _Ticker:
    """Counts compared rows; reports progress every 10,000."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None and self.done % 10_000 == 0:
            self.progress("compare", self.done, self.total)


def _compare(
    node: NodeParts,
    projector: Projector,
    engine: Engine,
    live_engine: Engine,
    tables: Sequence[Table],
    names: Sequence[str],
    end: int,
    report: ViewsReport,
    progress: Progress | None,
    attempts: int,
) -> ViewsReport:
    for _ in range(attempts):
        node.projector.catch_up()
        with live_engine.connect() as live, live.begin():
            positions = set(_positions(live, names).values())
            if len(positions) != 1:
                continue  # a projection is being rebuilt by another process: look again
            (position,) = positions
            if position < end:
                continue  # the live views were reset meanwhile
            with engine.connect() as conn:
                projector._catch_up(conn, None, position)
            total = 0
            with engine.connect() as rebuilt:
                for t in tables:
                    total += int(rebuilt.execute(select(func.count()).select_from(t)).scalar_one())
                tick = _Ticker(progress, total)
                report.position, report.tables = position, len(tables)
                for t in tables:
                    n, diff = _compare_table(t, rebuilt, live, tick)
                    report.rows += n
                    report.per_table[t.name] = n
                    if diff is not None:
                        report.first_difference = diff
                        return report
                if progress is not None:
                    progress("compare", total, total)
            return report
    raise StateConflict(
        "the live views kept moving under the check (a projection rebuild running?): run "
        "`flagledger audit views` again once it has finished"
    )
