"""The operation sequences the page-writer tests run twice: as plain statements one by one and through a PageWriter."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select

from projections.base import upsert
from projections.page import PageWriter


def table_rows(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(select(table).order_by(table.c.a, table.c.b))]


def start_page(conn: Connection, plain: Table, paged: Table, existing: list[tuple[str, int]], **old: Any) -> PageWriter:
    """Both tables hold the same rows from earlier pages; a fresh writer on ``paged``."""
    for t in (plain, paged):
        conn.execute(t.delete())
        for a, b in existing:
            conn.execute(t.insert().values(a=a, b=b, **old))
    return PageWriter(conn)


def apply_ops(conn: Connection, w: PageWriter, plain: Table, paged: Table, batch: list[Any]) -> None:
    """Each (op, (a, b), values) to ``plain`` at once and to ``paged`` through ``w``; a read checks the writer
    sees every earlier write. Ends with the writer flushed."""
    for op, (a, b), vals in batch:
        key = {"a": a, "b": b}
        if op == "upsert":
            upsert(conn, plain, [{**key, **vals}], ["a", "b"])
            w.upsert(paged, {**key, **vals})
        elif op == "update":
            conn.execute(plain.update().where((plain.c.a == a) & (plain.c.b == b)).values(**vals))
            w.update(paged, key, vals)
        elif op == "delete":
            conn.execute(plain.delete().where((plain.c.a == a) & (plain.c.b == b)))
            w.delete(paged, key)
        elif op == "read":
            assert table_rows(w.conn, paged) == table_rows(conn, plain), "a read missed an earlier write"
        else:
            w.flush()
    w.flush()
