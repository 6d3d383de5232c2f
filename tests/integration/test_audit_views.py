"""``flagledger audit views`` finds a view row that someone changed, on SQLite and PostgreSQL.

Threat: **an insider with the data directory** (or with the views database's PostgreSQL account) deletes, edits
or inserts view rows — no decision reads them any more (tests/adversarial/test_view_tamper.py), but staff
listings, work queues and timelines do: a held request could vanish from the reviewer's queue, a flag from the
holder's own list. The check rebuilds every view from the verified log into a scratch location and names the
first row that differs (table and primary key only: pseudonyms, ids, codes), exit 6; a clean node exits 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ledger.app import Actor
from ledger.audit.views_check import check_views, view_tables
from ledger.cli.main import main
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.support.approvals import approve_fully
from tests.support.links import link

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


def run(capsys: pytest.CaptureFixture[str], node: Node, *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(["--data-dir", str(node.config.data_dir), "audit", "views", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def busy_node(node: Node, person: Callable[[], str]) -> str:
    """Flags set and released, requests answered and held, a proxy, a number change; returns X's pseudonym."""
    app = node.app
    x, y, new = person(), person(), person()
    for agency, kind in ((B, "set"), (C, "set"), (C, "release")):
        extra: dict[str, Any] = {"kind": "release", "explanation": "説明済み"} if kind == "release" else {}
        rid = app.request_flags(Actor(agency, "req"), x, [ND, NAR], **extra)
        approve_fully(app, agency, rid)
        app.execute_request(Actor(agency, "op"), rid)
    for querier, subject in ((A, x), (C, y), (A, y)):
        app.request_provision(
            Actor(querier, "counter"), B, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    app.register_proxy(Actor(A, "req"), y, person())
    link(app, B, y, new)
    return app.subject(x)


def scratch_left(node: Node) -> list[str]:
    """What the check left behind: files under DATA_DIR/audit/ or scratch schemas in the node's database."""
    if node.config.database_url:
        with node.engine.connect() as conn:
            return [
                str(s)
                for s in conn.execute(
                    text(
                        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'flagledger_views%'"
                    )
                ).scalars()
            ]
    folder = node.config.data_dir / "audit"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_clean_node_passes_and_the_scratch_is_removed(node: Node, person: Callable[[], str], capsys) -> None:
    """Insider with the data directory (the baseline: nothing changed means exit 0, nothing left behind)."""
    busy_node(node, person)
    node.app.request_provision(
        Actor(C, "counter"), B, person(), legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    # the live views are behind the log here: the check catches them up first, as any reader does
    code, report, err = run(capsys, node)
    assert code == 0, err
    assert report["ok"] is True and report["first_difference"] is None
    assert report["position"] == node.app.max_position() and report["rows"] > 30
    assert report["tables"] == len(view_tables(node)) >= 14
    assert "rebuild:" in err and "compare:" in err, "progress on stderr"
    assert scratch_left(node) == []


HELD_ID = "SELECT request_id FROM queue_held_requests WHERE subject = :x"


@pytest.mark.parametrize(
    ("tampering", "table", "kind", "columns", "key"),
    [
        (
            "DELETE FROM agency_flags WHERE subject = :x AND agency = :b AND flag = :nar",
            "agency_flags",
            "missing",
            [],
            {"agency": B, "subject": "X", "flag": NAR},
        ),
        (
            "UPDATE queue_held_requests SET status = 'refused' WHERE subject = :x",
            "queue_held_requests",
            "changed",
            ["status"],
            {"request_id": HELD_ID},
        ),
        (
            "INSERT INTO portal_flag_intervals (agency, subject, flag, started, ended, request_id) "
            "VALUES (:b, :x, 'NON_DISCLOSURE', '2000-01-01T00:00:00.000000Z', NULL, 'forged')",
            "portal_flag_intervals",
            "extra",
            [],
            {"agency": B, "subject": "X", "flag": ND, "started": "2000-01-01T00:00:00.000000Z"},
        ),
    ],
    ids=["deleted", "edited", "inserted"],
)
def test_a_deleted_edited_or_inserted_view_row_is_named(
    node: Node,
    person: Callable[[], str],
    capsys,
    tampering: str,
    table: str,
    kind: str,
    columns: list[str],
    key: dict[str, str],
) -> None:
    """Insider with the data directory changes one view row: exit 6 naming the table and the row's key."""
    x = busy_node(node, person)
    node.projector.catch_up()
    with node.engine.begin() as conn:
        expected = {
            k: x if v == "X" else (str(conn.execute(text(v), {"x": x}).scalar_one()) if v == HELD_ID else v)
            for k, v in key.items()
        }
        assert conn.execute(text(tampering), {"x": x, "b": B, "nar": NAR}).rowcount == 1
    code, report, err = run(capsys, node, "--quiet")
    assert code == 6
    diff = report["first_difference"]
    assert (diff["table"], diff["kind"], diff["columns"], diff["key"]) == (table, kind, columns, expected)
    assert f"table {table}" in err and "FAILED" in err
    if kind == "changed":
        assert "refused" not in err, "the key is named, never another column's value"
    assert scratch_left(node) == []


def test_an_edited_timeline_row_is_named_by_position(node: Node, person: Callable[[], str]) -> None:
    """Insider with the data directory rewrites what an auditor's timeline says an event was."""
    busy_node(node, person)
    node.projector.catch_up()
    with node.engine.begin() as conn:
        position = conn.execute(text("SELECT MAX(position) FROM timeline_events")).scalar_one()
        conn.execute(text("UPDATE timeline_events SET actor = 'someone-else' WHERE position = :p"), {"p": position})
    report = check_views(node)
    assert report.first_difference is not None
    assert report.first_difference.table == "timeline_events" and report.first_difference.kind == "changed"
    assert report.first_difference.key["position"] == position and report.first_difference.columns == ("actor",)


def test_a_scratch_file_of_ones_own_is_used_and_own_databases_are_refused(
    sqlite_node: Node, person: Callable[[], str], tmp_path: Path, capsys
) -> None:
    """An operator points the rebuild elsewhere (a bigger disk); the node's own databases are never the scratch."""
    busy_node(sqlite_node, person)
    code, report, _ = run(capsys, sqlite_node, "--quiet", "--scratch", str(tmp_path / "scratch.sqlite"))
    assert code == 0 and report["scratch"].endswith("scratch.sqlite")
    assert (tmp_path / "scratch.sqlite").stat().st_mode & 0o777 == 0o600
    code = main(
        [
            "--data-dir",
            str(sqlite_node.config.data_dir),
            "audit",
            "views",
            "--quiet",
            "--scratch",
            str(tmp_path / "scratch.sqlite"),
        ]
    )
    assert code == 5 and "already holds views" in capsys.readouterr().err
    code = main(
        [
            "--data-dir",
            str(sqlite_node.config.data_dir),
            "audit",
            "views",
            "--scratch",
            str(sqlite_node.config.data_dir / "views.sqlite"),
        ]
    )
    assert code == 2 and "own databases" in capsys.readouterr().err
