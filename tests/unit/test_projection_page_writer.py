"""PageWriter: folding a page's upserts, updates and deletes leaves exactly the rows of running them one by one.

Random sequences of operations on a few keys (so they collide) run twice on real SQLite tables: once as
plain statements in order, once through a PageWriter with reads interleaved; the tables must end equal,
and every read through the writer must see every earlier write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from projections.base import create_engine
from projections.page import PageWriter
from tests.support.page_ops import apply_ops, start_page

meta = MetaData()
plain = Table(
    "plain",
    meta,
    Column("a", String(4), primary_key=True),
    Column("b", Integer, primary_key=True),
    Column("x", String(8)),
    Column("y", Integer),
)
paged = Table(
    "paged",
    meta,
    Column("a", String(4), primary_key=True),
    Column("b", Integer, primary_key=True),
    Column("x", String(8)),
    Column("y", Integer),
)

keys = st.tuples(st.sampled_from(["k", "m"]), st.integers(0, 1))
values = st.fixed_dictionaries({}, optional={"x": st.sampled_from(["p", "q", "r"]), "y": st.integers(0, 9)})
ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), keys, values),
        st.tuples(st.just("update"), keys, values.filter(bool)),
        st.tuples(st.just("delete"), keys, st.just({})),
        st.tuples(st.just("read"), keys, st.just({})),
        st.tuples(st.just("flush"), keys, st.just({})),
    ),
    max_size=40,
)


def rows(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(select(table).order_by(table.c.a, table.c.b))]


def test_folded_writes_equal_writes_one_by_one(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'page.sqlite'}")
    meta.create_all(engine)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(existing=st.lists(keys, max_size=4, unique=True), batch=ops)
    def check(existing: list[tuple[str, int]], batch: list[Any]) -> None:
        with engine.begin() as conn:
            w = start_page(conn, plain, paged, existing, x="old", y=-1)
            apply_ops(conn, w, plain, paged, batch)
            assert rows(conn, paged) == rows(conn, plain)

    check()


def test_a_key_must_be_whole(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'page.sqlite'}")
    meta.create_all(engine)
    with engine.begin() as conn:
        w = PageWriter(conn)
        try:
            w.update(paged, {"a": "k"}, {"x": "p"})
            raise AssertionError("a partial key was accepted")
        except ValueError as exc:
            assert "primary key" in str(exc)
