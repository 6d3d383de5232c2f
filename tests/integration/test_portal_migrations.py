"""The portal's tables have their own Alembic chain (ledger/portal/migrations), on SQLite and PostgreSQL.

Threat: the administrator upgrading a portal. The portal's database was made by ``create_all`` and an
``ALTER TABLE`` on open before it had a chain; an upgrade adopts every shape it may have (tables present, no
version table, ``last_asked`` added or not) and keeps every row — nothing lost (a card's registration still owed
to the hub, a page still waiting for its key, an erasure on record), nothing shown that was hidden (no row
invented or brought back; a page keeps the bytes it had after an erasure).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, text

import ledger.portal.migrations
from ledger.portal.migrations import HEAD, VERSION_TABLE, current, upgrade
from ledger.portal.store import open_portal_store
from ledger.portal.tables import metadata
from ledger.storage import create_engine
from tests.support.migration_chains import (
    migrate_at_once,
    new_and_migrated_schemas,
    schema,
    script_heads,
    two_databases,
)


@pytest.fixture
def urls(backend: str | None, tmp_path: Path) -> Iterator[list[str]]:
    """Two empty databases of the backend's kind."""
    with two_databases(backend, tmp_path) as found:
        yield found


def test_head_is_the_last_revision_of_the_portal_scripts() -> None:
    """The administrator upgrading: a revision added without moving HEAD would never run on an open."""
    assert script_heads(ledger.portal.migrations) == [HEAD]


def test_a_new_portal_gets_what_the_revisions_make_of_an_empty_database(urls: list[str]) -> None:
    """The administrator upgrading: a new portal (today's tables at once) and one migrated revision by revision
    must hold the same tables, or the next revision would meet a table it does not expect."""
    new, migrated = new_and_migrated_schemas(ledger.portal.migrations, urls)
    assert new == migrated
    assert set(metadata.tables) | {VERSION_TABLE} == set(new)


# The portal's tables as the code before its chain made them, commit by commit (create_all on open; 097da2c0 then
# added last_asked by ALTER TABLE): a copy, not ledger.portal.tables, which moves on.
SHAPES = {
    "e208de97 (cards, pages, seen, outbox)": ("portal_cards", "portal_pages", "portal_seen", "portal_outbox"),
    "c3576862 (+ erasures)": ("portal_cards", "portal_pages", "portal_seen", "portal_outbox", "portal_erasures"),
    "b64a9445 (+ waiting)": (*metadata.tables, "no last_asked"),
    "097da2c0 (+ waiting.last_asked, by ALTER TABLE)": (*metadata.tables, "ALTER last_asked"),
}


def _old_tables(meta: sa.MetaData) -> dict[str, sa.Table]:
    return {
        t.name: t
        for t in (
            sa.Table("portal_cards", meta, sa.Column("code", sa.String(33), primary_key=True)),
            sa.Table(
                "portal_pages",
                meta,
                sa.Column("code", sa.String(33), primary_key=True),
                sa.Column("version", sa.BigInteger, nullable=False),
                sa.Column("page", sa.LargeBinary, nullable=False),
            ),
            sa.Table("portal_seen", meta, sa.Column("event_id", sa.String(32), primary_key=True)),
            sa.Table(
                "portal_outbox",
                meta,
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("message", sa.LargeBinary, nullable=False),
            ),
            sa.Table(
                "portal_erasures",
                meta,
                sa.Column("code", sa.String(33), primary_key=True),
                sa.Column("version", sa.BigInteger, primary_key=True),
            ),
            sa.Table(
                "portal_waiting",
                meta,
                sa.Column("event_id", sa.String(32), primary_key=True),
                sa.Column("ref", sa.String(32), nullable=False, index=True),
                sa.Column("provider", sa.String(32), nullable=False),
                sa.Column("message", sa.LargeBinary, nullable=False),
                sa.Column("asked_at", sa.String(40), nullable=False),
            ),
        )
    }


def _make_old(engine: Engine, shape: tuple[str, ...]) -> None:
    """A portal database as the old code left it, holding a row or two in each of its tables."""
    meta = sa.MetaData()
    tables = _old_tables(meta)
    meta.create_all(engine, tables=[tables[n] for n in shape if n in tables])
    with engine.begin() as conn:
        conn.execute(tables["portal_cards"].insert(), [{"code": "m" + "1" * 32}, {"code": "m" + "2" * 32}])
        # card 1's page after an erasure: the page with the erased record gone, which must stay gone
        conn.execute(tables["portal_pages"].insert().values(code="m" + "1" * 32, version=7, page=b"after erasure"))
        conn.execute(tables["portal_seen"].insert(), [{"event_id": "e" * 32}, {"event_id": "f" * 32}])
        conn.execute(tables["portal_outbox"].insert(), [{"message": b"sealed registration 2"}, {"message": b"ask"}])
        if "portal_erasures" in shape:
            conn.execute(tables["portal_erasures"].insert().values(code="m" + "1" * 32, version=7))
        if "portal_waiting" in shape:
            conn.execute(
                tables["portal_waiting"].insert(),
                [
                    {"event_id": "w1", "ref": "ab" * 16, "provider": "A", "message": b"sealed page", "asked_at": "t1"},
                    {
                        "event_id": "w2",
                        "ref": "cd" * 16,
                        "provider": "B",
                        "message": b"sealed page 2",
                        "asked_at": "t2",
                    },
                ],
            )
        if "ALTER last_asked" in shape:  # as 097da2c0's open_portal_store did, then asked once
            conn.execute(text("ALTER TABLE portal_waiting ADD COLUMN last_asked VARCHAR(40)"))
            conn.execute(text("UPDATE portal_waiting SET last_asked = 't3' WHERE event_id = 'w1'"))


def _rows(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    found = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t.name: sorted(
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in conn.execute(
                    sa.select(*(c for c in t.c if c.name in {x["name"] for x in sa.inspect(conn).get_columns(t.name)}))
                )
            )
            for t in metadata.sorted_tables
            if t.name in found
        }


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_portal_database_made_before_the_chain_is_adopted_keeping_every_row(urls: list[str], shape: str) -> None:
    """The administrator upgrading a portal whose database the old code made (each shape it may have): every row
    of every table is there after, as it was (a page after an erasure keeps its bytes, an erasure stays on
    record); a table the old code lacked comes empty; the schema is a new portal's; opened again, nothing runs."""
    old = create_engine(urls[0])
    try:
        _make_old(old, SHAPES[shape])
        before = _rows(old)
    finally:
        old.dispose()

    store = open_portal_store(urls[0])
    try:
        after = _rows(store.engine)
        for name, rows in before.items():
            if name == "portal_waiting" and "ALTER last_asked" not in SHAPES[shape]:
                rows = [(*r, None) for r in rows]  # last_asked added, NULL: counted from when the page was set aside
            assert after[name] == rows, name
        for name in set(after) - set(before):
            assert after[name] == [], name  # a table the old code did not have comes empty: nothing invented
        with store.engine.connect() as conn:
            assert current(conn) == HEAD
        assert store.has_card("m" + "2" * 32)
        assert store.erasures() == ([{"code": "m" + "1" * 32, "version": 7}] if "portal_erasures" in before else [])
        owed = store.owed()
        assert [m for _, m in owed] == [b"sealed registration 2", b"ask"]
        store.owe(b"owed after the upgrade")  # the outbox's ids go on after the rows kept (PostgreSQL's sequence)
        assert [m for _, m in store.owed()][-1] == b"owed after the upgrade"
        assert max(i for i, _ in store.owed()) > max(i for i, _ in owed)
    finally:
        store.close()

    new = create_engine(urls[1])
    upgraded = create_engine(urls[0])
    try:
        assert upgrade(new) is None
        assert schema(upgraded) == schema(new)  # the upgraded portal and a new one: the same tables
        assert upgrade(upgraded) == HEAD  # opened again: nothing to do
    finally:
        new.dispose()
        upgraded.dispose()


def test_portal_processes_opening_an_old_database_at_once_migrate_it_once(urls: list[str]) -> None:
    """The portal's loop, a staff command and its web front opening an old database together after an upgrade:
    one adopts it, the others find it at head; its rows are kept once (no table made twice, no column added
    twice)."""
    old = create_engine(urls[0])
    try:
        _make_old(old, SHAPES["b64a9445 (+ waiting)"])
        before = _rows(old)
    finally:
        old.dispose()
    assert migrate_at_once("ledger.portal.migrations", urls[0], 3) == sorted(["None"] + [repr(HEAD)] * 2)
    engine = create_engine(urls[0])
    try:
        after = _rows(engine)
        assert after["portal_waiting"] == [(*r, None) for r in before["portal_waiting"]]
        assert all(after[name] == rows for name, rows in before.items() if name != "portal_waiting")
    finally:
        engine.dispose()
