"""Migrations of the operational tables and the projections' schema fingerprints (SQLite and PostgreSQL).

Threat: the administrator upgrading a node. A database of an older shape must be converted without losing an
event held behind a gap (a lost one is a victim's flag never applied); two processes opening one database at
once (the ``node`` loop and a staff command) must not both migrate; a projection whose definition changed is
rebuilt from the log, and the others are left as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

import ledger.runtime.migrations
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node, open_node
from ledger.runtime.migrations import HEAD, current, upgrade
from ledger.runtime.tables import parked_messages, pending_events
from projections.base import create_engine
from projections.flag_state import agency_flags
from projections.queues import QueueProjection, held_queue
from projections.registry import all_projections
from projections.schema import fingerprint
from tests.conftest import A, B
from tests.integration.upgrade_source import dump, view_tables
from tests.support.migration_chains import migrate_at_once, new_and_migrated_schemas, script_heads, two_databases
from tests.support.people import individual_number
from tests.support.postgres import temp_database


@pytest.fixture
def empty_url(backend: str | None, tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend's kind (not the one a node fixture uses)."""
    if backend is None:
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
    else:
        with temp_database() as url:
            yield url.replace("postgresql://", "postgresql+psycopg://")


def test_head_is_the_last_revision_of_the_scripts() -> None:
    assert script_heads(ledger.runtime.migrations) == [HEAD]


def test_a_database_of_an_older_shape_is_converted_keeping_what_waits(empty_url: str, sqlite_node: Node) -> None:
    """The shape before 27a5304 and 8e4b75b: ``ingest_pending`` keyed by (stream, version), a parked reason of
    at most 2000 characters, no ``relay_marks`` yet, no ``alembic_version``."""
    node = sqlite_node
    rid = node.app.request_flags(Actor(B, "req"), individual_number(), ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(B, "apr"), rid)
    raw = next(raw for _, _, raw in publishable(node.app))
    old = MetaData()
    Table(
        "projection_tracking",
        old,
        Column("name", String(64), primary_key=True),
        Column("position", BigInteger, nullable=False),
    )
    Table(
        "relay_position",
        old,
        Column("topic", String(200), primary_key=True),
        Column("position", BigInteger, nullable=False),
    )
    Table(
        "parked_messages",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", String(40), nullable=False),
        Column("code", String(40), nullable=False),
        Column("reason", String(2000), nullable=False),
        Column("source", String(200), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("status", String(16), nullable=False),
    )
    pending = Table(
        "ingest_pending",
        old,
        Column("stream", String(36), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("envelope", LargeBinary, nullable=False),
    )
    engine = create_engine(empty_url)
    try:
        old.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(pending),
                [
                    {"stream": "s-1", "version": 2, "envelope": raw},
                    {"stream": "s-2", "version": 3, "envelope": b"\x00unreadable"},
                ],
            )
        assert upgrade(engine) is None
        with engine.connect() as conn:
            assert current(conn) == HEAD
            found = inspect(conn)
            assert found.has_table("relay_marks") and found.has_table("projection_schema")
            assert found.get_pk_constraint("ingest_pending")["constrained_columns"] == ["stream", "version", "leaf"]
            rows = sorted(tuple(r) for r in conn.execute(select(pending_events)))
        assert rows == [  # (held before held_at existed: none, 0004)
            ("s-1", 2, Envelope.from_bytes(raw).hash_hex, raw, None),
            ("s-2", 3, hashlib.sha256(b"\x00unreadable").hexdigest(), b"\x00unreadable", None),
        ]
        with engine.begin() as conn:  # another event for the same place now waits beside it
            conn.execute(insert(pending_events).values(stream="s-1", version=2, leaf="f" * 64, envelope=b"x"))
            conn.execute(
                insert(parked_messages).values(
                    at="t", code="c", reason="r" * 5000, source="s", envelope=b"e", status="parked"
                )
            )
        assert upgrade(engine) == HEAD
    finally:
        engine.dispose()


def test_processes_opening_one_database_at_once_migrate_it_once(empty_url: str) -> None:
    # exactly one found the database empty and migrated it; the others found it at head
    assert migrate_at_once("ledger.runtime.migrations", empty_url, 4) == sorted(["None"] + [repr(HEAD)] * 3)


def test_a_projection_whose_definition_changed_alone_is_rebuilt(node: Node) -> None:
    x = individual_number()
    rid = node.app.request_flags(Actor(A, "req"), x, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"])
    node.app.approve_request(Actor(A, "apr"), rid)
    node.app.execute_request(Actor(A, "op"), rid)
    node.app.receive_query(B, A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    node.projector.catch_up()
    views = dump(node.engine, view_tables())
    assert views[held_queue.name] and views[agency_flags.name]
    with node.engine.begin() as conn:  # marks: gone where a projection is rebuilt, kept where it is untouched
        conn.execute(delete(held_queue))
        conn.execute(delete(agency_flags))

    class QueuesV2(QueueProjection):
        schema_version = QueueProjection.schema_version + 1  # what its rows mean changed

    projections = [QueuesV2() if p.name == QueueProjection.name else p for p in all_projections()]
    again = open_node(node.config.data_dir, projections=projections)
    try:
        after = dump(again.engine, view_tables())
        assert after[held_queue.name] == views[held_queue.name]
        assert after[agency_flags.name] == []
        assert again.projector.sync_schema() == []
    finally:
        again.close()


def test_a_fingerprint_follows_the_tables_ddl_and_the_version() -> None:
    def table(*extra: Column[str]) -> Table:
        return Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("note", Text), *extra)

    for dialect in (sqlite.dialect(), postgresql.dialect()):
        base = fingerprint("p", 1, [table()], dialect)
        assert base == fingerprint("p", 1, [table()], dialect)
        assert base != fingerprint("p", 2, [table()], dialect)
        assert base != fingerprint("p", 1, [table(Column("proposal_version", Integer))], dialect)
        assert base != fingerprint(
            "p",
            1,
            [Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("note", String(40)))],
            dialect,
        )


def test_a_new_database_gets_what_the_revisions_make_of_an_empty_one(backend: str | None, tmp_path: Path) -> None:
    """A new node's tables are created at head at once (no Alembic run): they must be exactly what running every
    revision makes, or an upgraded node and a new one would differ."""
    with two_databases(backend, tmp_path) as urls:
        new, migrated = new_and_migrated_schemas(ledger.runtime.migrations, urls)
    assert new == migrated
    assert {"relay_marks", "ingest_pending", "projection_schema"} <= set(new)
