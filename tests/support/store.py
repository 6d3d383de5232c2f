"""Reach under the ledger, as an attacker with database access would: raw rows of the event store."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from ledger.bootstrap import Node


def rows(node: Node) -> list[tuple[int, str, int, str, bytes]]:
    """(position, stream, version, topic, state) in log order."""
    if node.config.database_url:
        with psycopg.connect(node.config.database_url.replace("postgresql://", "postgresql://", 1)) as conn:
            got = conn.execute(
                "SELECT notification_id, originator_id::text, originator_version, topic, state "
                "FROM flagledger_events ORDER BY notification_id"
            ).fetchall()
        return [(int(a), str(b), int(c), str(d), bytes(e)) for a, b, c, d, e in got]
    with sqlite3.connect(node.config.data_dir / "ledger.sqlite") as conn:
        got2 = conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
        ).fetchall()
    return [(int(a), _uuid_text(b), int(c), str(d), bytes(e)) for a, b, c, d, e in got2]


def _uuid_text(value: Any) -> str:
    text = str(value)
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def execute(node: Node, sql_sqlite: str, sql_pg: str, params: tuple[Any, ...]) -> None:
    if node.config.database_url:
        with psycopg.connect(node.config.database_url) as conn:
            conn.execute(sql_pg, params)
    else:
        with sqlite3.connect(node.config.data_dir / "ledger.sqlite") as conn:
            conn.execute(sql_sqlite, params)
    node.app.signed_store.forget()


def set_state(node: Node, position: int, state: bytes) -> None:
    execute(
        node,
        "UPDATE stored_events SET state = ? WHERE rowid = ?",
        "UPDATE flagledger_events SET state = %s WHERE notification_id = %s",
        (state, position),
    )


def delete(node: Node, position: int) -> None:
    execute(
        node,
        "DELETE FROM stored_events WHERE rowid = ?",
        "DELETE FROM flagledger_events WHERE notification_id = %s",
        (position,),
    )
