"""Dates and times at every edge: refused with the field named, never a 500, a traceback or the value echoed.

Threat: an insider at a staff terminal or a shell. ``GET /api/v1/queue?today=9999-12-31`` answered 500 (adding
the 30 days of "reviews due" overflowed), ``audit replay --as-of 0001-01-01T00:00:00+09:00`` died with a
traceback, and refusals repeated what was typed. The ledger's calendar is 1900-01-01 … 2999-12-31
(``ledger.domain.types``): anything outside is a 422 naming the field, or exit 2 naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from ledger.app import Actor
from ledger.cli.main import main
from ledger.domain.types import LAST_DAY
from ledger.errors import InputError
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import B
from tests.support.api import auth, client

OUTSIDE = ["9999-12-31", "3000-01-01", "0001-01-01", "1899-12-31"]


@pytest.mark.parametrize("day", [*OUTSIDE, "2026-02-30", "not-a-date"])
def test_the_queue_refuses_a_day_outside_the_calendar_with_the_field_named(sqlite_node: Node, day: str) -> None:
    http = client(sqlite_node)
    r = http.get("/api/v1/queue", params={"today": day}, headers=auth(sqlite_node, B, "apr"))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_input" and [f["loc"] for f in body["fields"]] == [["query", "today"]]
    assert day not in r.text


def test_the_queue_answers_on_the_calendars_last_day(sqlite_node: Node) -> None:
    http = client(sqlite_node)
    r = http.get("/api/v1/queue", params={"today": str(LAST_DAY)}, headers=auth(sqlite_node, B, "apr"))
    assert r.status_code == 200 and r.json()["reviews_due"] == []


def test_a_review_date_outside_the_calendar_is_422_and_records_nothing(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    http, headers = client(sqlite_node), auth(sqlite_node, B, "req")
    before = sqlite_node.app.max_position()
    r = http.post(
        "/api/v1/flag-requests",
        json={"subject": person(), "flags": ["NON_DISCLOSURE"], "review_date": "9999-12-31"},
        headers=headers,
    )
    assert r.status_code == 422 and [f["loc"] for f in r.json()["fields"]] == [["body", "review_date"]]
    assert "9999" not in r.text and sqlite_node.app.max_position() == before


def test_in_process_callers_meet_the_same_calendar(sqlite_node: Node, person: Callable[[], str]) -> None:
    app = sqlite_node.app
    with pytest.raises(InputError, match="review_date"):
        app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"], review_date=date(9999, 12, 31))
    with pytest.raises(InputError, match="today"):
        views.work_queue(sqlite_node, Actor(B, "apr"), date.max)


def _cli_refusal(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses before any command runs
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["view", "queue", "--as", f"{B}/apr", "--today", "9999-12-31"], "--today"),
        (["view", "queue", "--as", f"{B}/apr", "--today", "0001-01-01"], "--today"),
        (
            [
                "flag",
                "request",
                "--as",
                f"{B}/req",
                "--subject",
                "p" + "0" * 32,
                "--flag",
                "NON_DISCLOSURE",
                "--review-date",
                "9999-12-31",
            ],
            "--review-date",
        ),
        (["audit", "replay", "--as", f"{B}/aud", "--as-of", "0001-01-01T00:00:00+09:00"], "--as-of"),
        (["audit", "replay", "--as", f"{B}/aud", "--as-of", "9999-12-31T23:00:00-09:00"], "--as-of"),
        (
            [
                "audit",
                "report",
                "--as",
                f"{B}/aud",
                "--from",
                "9999-12-31T23:00:00-09:00",
                "--to",
                "2026-01-01T00:00:00Z",
                "--out",
                "/nonexistent/r",
            ],
            "--from",
        ),
        (
            [
                "agency",
                "trust",
                "--as",
                f"{B}/admin",
                "--agency",
                "131099",
                "--name",
                "Z",
                "--kind",
                "municipality",
                "--key-id",
                "131099:00",
                "--public-key",
                "00",
                "--valid-from",
                "0001-01-01T00:00:00+01:00",
            ],
            "--valid-from",
        ),
        (["staff", "token", "--as", f"{B}/apr", "--ttl", "1e300h"], "--ttl"),
    ],
)
def test_the_command_line_exits_2_naming_the_option(
    sqlite_node: Node, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    before = sqlite_node.app.max_position()
    code, err = _cli_refusal(capsys, ["--data-dir", str(sqlite_node.config.data_dir), *argv])
    assert code == 2, err
    assert named in err and "Traceback" not in err
    value = argv[argv.index(named) + 1]
    assert value not in err, "what was typed is not repeated"
    assert sqlite_node.app.max_position() == before
