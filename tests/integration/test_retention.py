"""``retention due`` (ledger.audit.retention): what each record kind's period makes due, by pseudonym only.

Threats: the perpetrator (a flag erased before the records it hides would un-hide them), the insider reading the
listing (it names no number and no note), and the administrator configuring a policy that would do the first.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ledger.app import Actor
from ledger.audit.retention import RetentionPolicy, retention_due
from ledger.cli.main import main
from ledger.errors import ConfigurationError, PermissionDenied
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B
from tests.support.approvals import approve_fully

ND = "NON_DISCLOSURE"


def _protect(node: Node, subject: str) -> None:
    rid = node.app.request_flags(Actor(B, "req"), subject, [ND])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)


def _release(node: Node, subject: str) -> None:
    rid = node.app.request_flags(Actor(B, "req"), subject, [ND], kind="release", explanation="explained")
    approve_fully(node.app, B, rid)
    node.app.execute_request(Actor(B, "op"), rid)


def _query(node: Node, subject: str) -> None:
    node.app.request_provision(
        Actor(A, "counter"), B, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )


def _story(node: Node, person: Any) -> dict[str, str]:
    """x: a closed case, a released flag, a query and a read; y: a flag still held, and a query; z: an open case."""
    x, y, z, perpetrator = person(), person(), person(), person()
    app = node.app
    closed = app.open_case(Actor(B, "req"), x, perpetrators=[perpetrator], notes="相談: 住所は秘匿")
    case = app.case(closed)
    case.close(by="req", note="closed")
    app.save_as(B, case)
    app.open_case(Actor(B, "req"), z)
    _protect(node, x)
    _protect(node, y)
    _query(node, x)
    _query(node, y)
    _release(node, x)
    views.subject_timeline(node, Actor(B, "aud"), x, "yearly audit")  # an access record at B
    return {n: app.subject(v) for n, v in {"x": x, "y": y, "z": z, "perpetrator": perpetrator}.items()} | {
        "raw_x": x,
        "raw_y": y,
    }


def _in_years(years: int) -> date:
    today = datetime.now(UTC).date()
    return date(today.year + years, today.month, min(today.day, 28))


def _by_kind(node: Node, day: date, policy: RetentionPolicy | None = None) -> dict[str, Any]:
    return {k.kind: k for k in retention_due(node, Actor(B, "aud"), day, policy)}


def test_each_kind_is_due_when_its_own_period_ended_and_never_while_held_or_open(node: Node, person: Any) -> None:
    """Defends the perpetrator's target: a flag still held, and an open case, are never due however late the
    day; a released flag is due no sooner than the provision records it hid (SQLite and PostgreSQL)."""
    s = _story(node, person)
    today = datetime.now(UTC).date()
    now = _by_kind(node, today)
    assert all(k.count == 0 and k.subjects == () for k in now.values()), "nothing is due today"
    six = _by_kind(node, _in_years(6))
    assert six["cases"].count == 1 and set(six["cases"].subjects) == {s["x"], s["perpetrator"]}
    assert six["provision"].count == 0 and six["flags"].count == 0 and six["access"].count == 0
    eight = _by_kind(node, _in_years(8))
    assert eight["provision"].count == 2 and set(eight["provision"].subjects) == {s["x"], s["y"]}
    assert eight["access"].count >= 1 and s["x"] in eight["access"].subjects
    assert eight["flags"].count == 1 and eight["flags"].subjects == (s["x"],), "y's flag is still held"
    assert s["z"] not in eight["cases"].subjects, "an open case is never due"
    late = _by_kind(node, _in_years(90))
    assert s["y"] not in late["flags"].subjects and s["z"] not in late["cases"].subjects


def test_the_policy_refuses_flags_that_would_expire_before_what_they_hide() -> None:
    """Defends against the administrator configuring flags to be erased before the records they hide (which
    would show a victim's old queries, and so an old location, on the portal)."""
    with pytest.raises(ConfigurationError, match="flags_years"):
        RetentionPolicy.load({"provision_years": 7, "flags_years": 5})
    assert RetentionPolicy.load({}).years("provision") == 7
    assert RetentionPolicy.load({"cases_years": 10}).years("cases") == 10


def test_the_command_lists_pseudonyms_only_and_needs_an_auditor(
    sqlite_node: Node, person: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defends against the insider reading personal data out of the listing (no number, no note) and against
    staff without the audit permission listing who has protection."""
    node = sqlite_node
    s = _story(node, person)
    with pytest.raises(PermissionDenied):
        retention_due(node, Actor(B, "counter"), date(2100, 1, 1))
    data = str(node.config.data_dir)
    node.close()
    capsys.readouterr()
    late = _in_years(8).isoformat()
    code = main(["--data-dir", data, "retention", "due", "--as-of", late, "--json", "--as", f"{B}/aud"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    report = json.loads(printed.out)
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert report["erased"] == 0 and set(kinds) == {"provision", "access", "cases", "flags"}
    assert kinds["flags"]["subjects"] == [s["x"]]
    for secret in (s["raw_x"], s["raw_y"], "住所は秘匿"):
        assert secret not in printed.out
    with pytest.raises(SystemExit) as refused:
        main(["--data-dir", data, "retention", "due", "--as-of", "not-a-day", "--as", f"{B}/aud"])
    assert refused.value.code == 2 and "not a date" in capsys.readouterr().err
    assert main(["--data-dir", data, "retention", "due", "--as-of", late, "--as", f"{B}/aud"]) == 0
    text = capsys.readouterr().out
    assert "nothing is erased" in text and s["x"] in text and s["raw_x"] not in text
