"""One-time codes (TOTP) as the console's second factor where an agency allows them: a clerk registers an
authenticator app, signs in with a code from it, and a code cannot be reused or guessed."""

from __future__ import annotations

import json
import re
import time

import pyotp
import pytest
from fastapi.testclient import TestClient

from ledger.app import Actor
from ledger.cli.main import main
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.integration.test_api_console import login_field, signed_in
from tests.support.api import client
from tests.support.staff import password_of


def _recorded(node: Node, event: str) -> int:
    return sum(1 for _, _, env in node.app.envelopes() if env.header.topic.endswith(event))


def _register(node: Node, staff: str = "counter") -> pyotp.TOTP:
    http, _ = signed_in(node, B, staff)
    page = http.get("/console/one-time-codes")
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert secret is not None and csrf is not None, page.text
    totp = pyotp.TOTP(secret.group(1))
    data = {"secret": secret.group(1), "code": totp.now(), "csrf": csrf.group(1)}
    done = http.post("/console/one-time-codes", data=data, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/login?done=totp_registered"
    assert http.get("/console/", follow_redirects=False).status_code == 303, "the session without a code ended"
    return totp


def _first_factor(node: Node, staff: str = "counter") -> TestClient:
    http = client(node)
    data = {"agency": B, "staff": staff, "password": password_of(B, staff), "csrf": login_field(http)}
    r = http.post("/console/login", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login/code"
    return http


def test_codes_only_where_the_agency_allows_them(sqlite_node: Node) -> None:
    """Threat: an insider on a network that bars phones. An agency that has not allowed one-time codes
    gets none: its staff register security keys; allowing them is an administrator's recorded act."""
    node = sqlite_node
    http, csrf = signed_in(node, B, "counter")
    assert "認められていません" in http.get("/console/one-time-codes").text
    data = {"secret": pyotp.random_base32(), "code": "123456", "csrf": csrf}
    assert http.post("/console/one-time-codes", data=data).status_code == 403
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    assert node.app.totp_allowed(B) and _recorded(node, "SignInPolicy.TotpAllowed") == 1


def test_a_clerk_signs_in_with_a_code_and_no_code_opens_two_sessions(sqlite_node: Node) -> None:
    """Threat: an administrator or a shell user (a token someone minted no longer opens the console for a
    clerk with codes) and the network (a code seen on the wire or over a shoulder is spent)."""
    node = sqlite_node
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    totp = _register(node)
    http = _first_factor(node)
    spent = http.post("/console/login/code", data={"code": totp.now()})
    assert spent.status_code == 401 and "already used" in spent.text, "the code that registered is spent too"
    code = totp.at(time.time() + 30)  # the next code (the authenticator's clock a little ahead is accepted)
    r = http.post("/console/login/code", data={"code": code}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    assert "B市 / counter" in http.get("/console/").text
    again = _first_factor(node)
    r = again.post("/console/login/code", data={"code": code}, follow_redirects=False)
    assert r.status_code == 401 and "already used" in r.text
    assert _recorded(node, "OneTimeCodes.Used") == 1
    assert _recorded(node, "OneTimeCodes.Failed") == 2, "both spent codes were recorded as wrong ones"


def test_five_wrong_codes_lock_the_codes_and_are_recorded(sqlite_node: Node) -> None:
    """Threat: a perpetrator who has a clerk's first factor guessing six digits: five wrong codes lock the
    codes for fifteen minutes (a good code is refused too), and every wrong one is on record."""
    node = sqlite_node
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    totp = _register(node)
    http = _first_factor(node)
    good = totp.at(time.time() + 30)
    wrong = [f"{(int(good) + n) % 1_000_000:06d}" for n in range(100_000, 600_000, 100_000)]
    for code in wrong:
        assert http.post("/console/login/code", data={"code": code}).status_code == 401
    locked = http.post("/console/login/code", data={"code": good})
    assert locked.status_code == 401 and "locked" in locked.text
    assert _recorded(node, "OneTimeCodes.Failed") == 5 and _recorded(node, "OneTimeCodes.Used") == 0
    assert "flagledger_session" not in http.cookies


def test_an_administrator_allows_and_withdraws_codes_from_the_command_line(
    sqlite_node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: an administrator. Only an administrator changes the policy, and each change is recorded."""
    node, where = sqlite_node, ["--data-dir", str(sqlite_node.config.data_dir)]
    assert main([*where, "policy", "totp", "allow", "--as", f"{B}/admin"]) == 0
    assert json.loads(capsys.readouterr().out) == {"agency": B, "one_time_codes": True}
    assert main([*where, "policy", "totp", "withdraw", "--as", f"{B}/counter"]) != 0, "a clerk may not"
    assert "may not administer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main([*where, "policy", "totp", "sometimes", "--as", f"{B}/admin"])
    assert refused.value.code == 2 and "choose from allow, withdraw" in capsys.readouterr().err
    assert main([*where, "policy", "totp", "withdraw", "--as", f"{B}/admin"]) == 0
    capsys.readouterr()
    assert not node.app.totp_allowed(B)
    assert _recorded(node, "SignInPolicy.TotpAllowed") == 1 and _recorded(node, "SignInPolicy.TotpWithdrawn") == 1
