"""Reach under the ledger, as an attacker with database access would: raw rows of the event store."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from ledger.runtime.bootstrap import Node


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


def forge_head(node: Node) -> None:
    """Rewrite the log head row to match the rows as they are now, as an attacker without any key can: it is
    only hashes of the signed headers (ledger.log.head). What still catches a cut tail is a signed head."""
    from ledger.merkle import CompactRange

    tree = CompactRange(node.app.signed_mapper.open(state).leaf_hash for *_, state in rows(node))
    values = (tree.size, tree.root(), b"".join(tree.frontier()))
    execute(
        node,
        "INSERT OR REPLACE INTO stored_events_head (id, size, root, frontier) VALUES (1, ?, ?, ?)",
        "INSERT INTO flagledger_events_head (id, size, root, frontier) VALUES (1, %s, %s, %s) ON CONFLICT (id) "
        "DO UPDATE SET size = EXCLUDED.size, root = EXCLUDED.root, frontier = EXCLUDED.frontier",
        values,
    )


def batches(node: Node) -> list[list[int]]:
    """The log's positions grouped by sealed batch (events sharing one signature), in log order."""
    groups: list[list[int]] = []
    last = b""
    for position, *_, state in rows(node):
        signature = node.app.signed_mapper.open(state).seal.signature
        if groups and signature == last:
            groups[-1].append(position)
        else:
            groups.append([position])
        last = signature
    return groups
