"""PageWriter's driver path: statements compiled once and sent with ``exec_driver_sql`` write exactly what
SQLAlchemy's own execution of the same constructs writes, on SQLite and on PostgreSQL.

Random sequences of upserts, updates and deletes (a Boolean column included, whose bind processor SQLAlchemy
applies on SQLite) run once as plain SQLAlchemy statements one by one and once through a PageWriter; the
tables must end equal. The SQL the driver gets must be the very string SQLAlchemy sends for that shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Column, Connection, Engine, Integer, MetaData, String, Table, event, select

from projections.base import create_engine
from projections.page import _driver, _upsert_construct
from tests.support.page_ops import apply_ops, start_page
from tests.support.postgres import temp_database

meta = MetaData()


def _table(name: str) -> Table:
    return Table(
        name,
        meta,
        Column("a", String(4), primary_key=True),
        Column("b", Integer, primary_key=True),
        Column("x", String(8)),
        Column("y", Integer),
        Column("z", Boolean),
    )


plain, paged = _table("drv_plain"), _table("drv_paged")

keys = st.tuples(st.sampled_from(["k", "m"]), st.integers(0, 1))
values = st.fixed_dictionaries(
    {},
    optional={
        "x": st.sampled_from(["p", "q", None]),
        "y": st.integers(0, 9),
        "z": st.sampled_from([True, False, None]),
    },
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), keys, values),
        st.tuples(st.just("update"), keys, values.filter(bool)),
        st.tuples(st.just("delete"), keys, st.just({})),
        st.tuples(st.just("flush"), keys, st.just({})),
    ),
    max_size=30,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'driver.sqlite'}")
        meta.create_all(eng)
        yield eng
        eng.dispose()
        return
    with temp_database() as url:
        eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))  # as NodeConfig.views_url
        meta.create_all(eng)
        yield eng
        eng.dispose()


def rows(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(select(table).order_by(table.c.a, table.c.b))]


def test_driver_writes_equal_sqlalchemy_writes(engine: Engine) -> None:
    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(existing=st.lists(keys, max_size=4, unique=True), batch=ops)
    def check(existing: list[tuple[str, int]], batch: list[Any]) -> None:
        with engine.begin() as conn:
            w = start_page(conn, plain, paged, existing, x="old", y=-1, z=True)
            apply_ops(conn, w, plain, paged, batch)
            assert rows(conn, paged) == rows(conn, plain)

    check()


def test_driver_sql_is_what_sqlalchemy_sends(engine: Engine) -> None:
    sent: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    cols = ("a", "b", "z")
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.begin() as conn:
            conn.execute(
                _upsert_construct(engine.dialect.name, paged, cols),
                [{"a": "k", "b": 0, "z": True}, {"a": "m", "b": 1, "z": None}],
            )
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert sent[-1] == _driver(engine.dialect, paged, "upsert", cols).sql
    with engine.connect() as conn:
        assert rows(conn, paged) == [("k", 0, None, None, True), ("m", 1, None, None, None)]
