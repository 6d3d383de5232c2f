"""The command line keeps issue 18's reads as the API does: portal views only for the portal's system account
signed in with its own secret, no other agency's holders for any purpose, system roles never for staff."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ledger.runtime.bootstrap import Node
from tests.conftest import A, B
from tests.e2e.test_cli_other_agencies import cli, protect


def test_portal_views_on_the_command_line_need_the_portal_s_own_secret(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threats: a shell user or counter clerk claiming ``--as`` a clerk or the portal's name (the perpetrator's
    friend at a counter); an administrator giving a clerk the portal's role."""
    node, x = sqlite_node, person()
    code, out, err = cli(node, capsys, "system", "enroll", "portal", "--kind", "portal", "--as", f"{A}/admin")
    assert code == 0, err
    enrolled = json.loads(out)
    assert enrolled["roles"] == ["portal"] and enrolled["secret"].startswith("fls1_")
    argv = ("view", "portal", "--viewer", x, "--subject", x)
    monkeypatch.delenv("FLAGLEDGER_SYSTEM_SECRET", raising=False)
    for who in (f"{A}/counter", f"{B}/counter", f"{A}/portal"):
        code, out, err = cli(node, capsys, *argv, "--as", who)
        assert (code, out) == (4, "") and "[system_only]" in err, (who, err)
    monkeypatch.setenv("FLAGLEDGER_SYSTEM_SECRET", enrolled["secret"])
    code, out, err = cli(node, capsys, *argv, "--as", f"{A}/counter")
    assert (code, out) == (4, ""), "another account's secret does not make a clerk the portal"
    code, out, err = cli(node, capsys, *argv, "--as", f"{A}/portal")
    assert code == 0 and json.loads(out) == {"access": "self", "records": []}, err
    code, out, err = cli(node, capsys, "view", "self-info", "--viewer", x, "--subject", x, "--as", f"{A}/portal")
    assert code == 0 and json.loads(out)["access"] == "self", err
    code, _, err = cli(node, capsys, "staff", "grant-role", "counter", "portal", "--as", f"{A}/admin")
    assert code == 4 and "[system_role]" in err
    code, _, err = cli(node, capsys, "permission", "grant", "counter", "read_portal", "--as", f"{A}/admin")
    assert code == 4 and "[system_role]" in err
    code, _, err = cli(node, capsys, "system", "deactivate", "portal", "--as", f"{A}/admin")
    assert code == 0, err
    code, out, err = cli(node, capsys, *argv, "--as", f"{A}/portal")
    assert (code, out) == (4, ""), "a deactivated account's secret no longer works"


def test_no_purpose_opens_another_agency_s_holding_on_the_command_line(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: a peer agency's reviewer or auditor giving a purpose to learn who protects a person."""
    node, x = sqlite_node, person()
    protect(node, x)
    before = node.app.max_position()
    for who in (f"{A}/aud", f"{A}/rev", f"{B}/aud"):
        code, out, err = cli(node, capsys, "view", "nationwide", "--as", who, "--subject", x, "--purpose", "調査")
        assert (code, out) == (4, "") and "[holders_withheld]" in err and B not in err
    assert node.app.max_position() == before
    code, out, _ = cli(node, capsys, "view", "nationwide", "--as", f"{A}/aud", "--subject", x)
    assert code == 0 and json.loads(out)["holders"] is None
    code, out, _ = cli(node, capsys, "view", "timeline", "--as", f"{A}/aud", "--subject", x, "--purpose", "監査")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["agency"] for r in rows} == {A}, "only A's own events (the read itself)"
