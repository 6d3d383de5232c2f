"""Writes of one projector page, gathered and sent as one executemany per statement shape.

Applying events row by row cost a statement round trip per row (the rebuild ran at ~2% of raw decode,
figure "projection rebuild"). A :class:`PageWriter` keeps, per table, the page's pending upserts, updates
and deletes *by primary key* and folds later operations on a key into earlier ones in memory, so the state
written at :meth:`PageWriter.flush` is exactly what the same operations executed one by one would leave:

* upsert after upsert merges the columns (``ON CONFLICT DO UPDATE`` sets only the given columns);
* update after upsert merges into the pending row; update of a key only in the database is queued;
* delete drops what is pending for the key and queues the delete;
* flushing runs deletes, then updates, then upserts — the only orders the folding leaves possible
  (an update is queued only for a key with nothing pending, an upsert after a delete is a fresh row).

Anything else (a read, a statement not by primary key) goes through :attr:`PageWriter.conn`, which flushes
first, so reads always see every earlier write. Everything happens inside the page's transaction: the
tracking position still commits with the rows or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table, and_, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from ledger.log.view_cipher import ViewCipher

__all__ = ["PageWriter"]

Key = tuple[Any, ...]
Params = tuple[Any, ...] | dict[str, Any]


class _Driver:
    """One statement compiled once to the driver's SQL, run with ``exec_driver_sql`` (one executemany).

    Running the construct through ``Connection.execute`` compiled its parameters afresh for every row
    (``construct_params``, ~10 µs a row with the executemany itself at ~3 µs; figure "projection rebuild").
    Here the SQL string, the order of its parameters and the type's bind processors (e.g. ``Boolean`` on
    SQLite) are fixed once, exactly as SQLAlchemy's own compilation for these columns renders them, and
    the rows go to the driver as they are, inside the page's transaction like any other statement.
    """

    __slots__ = ("_get", "processors", "sql", "stmt")

    def __init__(self, stmt: Any, dialect: Dialect, columns: tuple[str, ...] | None) -> None:
        self.stmt = stmt
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns) if columns is not None else None)
        binds = compiled.binds
        self.processors: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (n, f) for n in binds if (f := binds[n].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )
        # left to SQLAlchemy's own execution (none of the projections' tables): bind names it would rename
        # for the driver, and column defaults, which it fills in per row
        table = getattr(stmt, "table", None)
        defaults = table is not None and any(c.default is not None or c.onupdate is not None for c in table.columns)
        self.sql: str | None = None if defaults or getattr(compiled, "escaped_bind_names", None) else compiled.string
        order = tuple(compiled.positiontup or ())
        if dialect.positional and len(order) < 2:  # itemgetter of one name gives the value, not a tuple
            self._get: Callable[[dict[str, Any]], Params] = lambda v: tuple(v[n] for n in order)
        elif dialect.positional:
            self._get = itemgetter(*order)
        else:
            self._get = dict

    def params(self, values: dict[str, Any]) -> Params:
        """The driver's parameters for one row given by bind name."""
        if self.processors:
            values = dict(values)
            for n, f in self.processors:
                values[n] = f(values[n])
        return self._get(values)

    def run(self, conn: Connection, values: list[dict[str, Any]]) -> None:
        if self.sql is None:
            conn.execute(self.stmt, values)
            return
        rows = [self.params(v) for v in values] if self.processors else list(map(self._get, values))
        conn.exec_driver_sql(self.sql, rows)


# prebuilt statements by (dialect, table, shape): building an upsert per row cost as much as running it
_STATEMENTS: dict[tuple[str, Table, str, tuple[str, ...]], _Driver] = {}


def _driver(dialect: Dialect, table: Table, kind: str, cols: tuple[str, ...]) -> _Driver:
    # the driver too: two drivers of one database (psycopg, psycopg2) render parameters differently
    k = (f"{dialect.dialect_description}:{dialect.paramstyle}", table, kind, cols)
    d = _STATEMENTS.get(k)
    if d is None:
        if kind == "upsert":
            d = _Driver(_upsert_construct(dialect.name, table, cols), dialect, cols)
        elif kind == "update":
            d = _Driver(_update_construct(table, cols), dialect, None)
        else:
            d = _Driver(table.delete().where(_by_key(table)), dialect, None)
        _STATEMENTS[k] = d
    return d


def _upsert_construct(dialect: str, table: Table, cols: tuple[str, ...]) -> Any:
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    keys = [c.name for c in table.primary_key.columns]
    updates = {c: ins.excluded[c] for c in cols if c not in keys}
    return (
        ins.on_conflict_do_update(index_elements=keys, set_=updates)
        if updates
        else ins.on_conflict_do_nothing(index_elements=keys)
    )


def _by_key(table: Table) -> Any:
    return and_(*(c == bindparam(f"k_{c.name}") for c in table.primary_key.columns))


def _update_construct(table: Table, cols: tuple[str, ...]) -> Any:
    return table.update().where(_by_key(table)).values({c: bindparam(f"v_{c}") for c in cols})


class _Pending:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.keys = tuple(c.name for c in table.primary_key.columns)
        getter = itemgetter(*self.keys)
        first = self.keys[0]
        self._key: Callable[[dict[str, Any]], Key] = (lambda v: (v[first],)) if len(self.keys) == 1 else getter
        self.upserts: dict[Key, dict[str, Any]] = {}
        self.updates: dict[Key, dict[str, Any]] = {}
        self.deletes: dict[Key, None] = {}

    def key(self, values: dict[str, Any]) -> Key:
        try:
            return self._key(values)
        except KeyError as exc:
            raise ValueError(f"{self.table.name}: the whole primary key {self.keys} is needed") from exc

    def __bool__(self) -> bool:
        return bool(self.upserts or self.updates or self.deletes)


class PageWriter:
    """Pending row writes of one page; see the module docstring for the folding rules."""

    def __init__(self, conn: Connection, cipher: ViewCipher | None = None) -> None:
        self._conn = conn
        # seals the personal cells a projection writes (docs/erasure.md); plain without data keys
        self.cipher = cipher if cipher is not None else ViewCipher(None)
        self._dialect = conn.dialect
        self._tables: dict[Table, _Pending] = {}
        # per-page memo a projection may keep of rows it has read or written (cleared with the page)
        self.memo: dict[Hashable, Any] = {}

    def _pending(self, table: Table) -> _Pending:
        p = self._tables.get(table)
        if p is None:
            p = self._tables[table] = _Pending(table)
        return p

    @property
    def conn(self) -> Connection:
        """The page's connection, with every pending write sent first (for reads and other statements)."""
        self.flush()
        return self._conn

    def upsert(self, table: Table, row: dict[str, Any]) -> None:
        p = self._tables.get(table)
        if p is None:
            p = self._pending(table)
        k = p.key(row)
        upserts = p.upserts
        pending = upserts.get(k)
        if pending is not None:
            pending.update(row)
            return
        if p.updates:
            queued = p.updates.pop(k, None)
            if queued is not None:  # keep the update's order before the upsert: send it now
                self._send_updates(p, {k: queued})
        upserts[k] = dict(row)

    def update(self, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
        """``UPDATE table SET values WHERE primary key = key`` (no row: nothing happens)."""
        p = self._tables.get(table)
        if p is None:
            p = self._pending(table)
        k = p.key(key)
        pending = p.upserts.get(k)
        if pending is not None:
            pending.update(values)
        elif k not in p.deletes:
            p.updates.setdefault(k, {}).update(values)

    def delete(self, table: Table, key: dict[str, Any]) -> None:
        p = self._tables.get(table)
        if p is None:
            p = self._pending(table)
        k = p.key(key)
        p.upserts.pop(k, None)
        p.updates.pop(k, None)
        p.deletes[k] = None

    def flush(self) -> None:
        for p in self._tables.values():
            if not p:
                continue
            if p.deletes:
                keys = p.keys
                _driver(self._dialect, p.table, "delete", ()).run(
                    self._conn, [{f"k_{c}": v for c, v in zip(keys, k, strict=True)} for k in p.deletes]
                )
                p.deletes.clear()
            if p.updates:
                self._send_updates(p, p.updates)
                p.updates.clear()
            if p.upserts:
                shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for row in p.upserts.values():
                    shapes.setdefault(tuple(row), []).append(row)
                for cols, rows in shapes.items():
                    _driver(self._dialect, p.table, "upsert", cols).run(self._conn, rows)
                p.upserts.clear()

    def _send_updates(self, p: _Pending, updates: dict[Key, dict[str, Any]]) -> None:
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for k, values in updates.items():
            params = {f"k_{c}": v for c, v in zip(p.keys, k, strict=True)}
            params.update({f"v_{c}": v for c, v in values.items()})
            shapes.setdefault(tuple(values), []).append(params)
        for cols, params_list in shapes.items():
            _driver(self._dialect, p.table, "update", cols).run(self._conn, params_list)
