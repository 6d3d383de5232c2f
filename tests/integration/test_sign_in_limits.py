"""Failed sign-ins are limited and recorded by one rule for every credential (ledger/domain/lockout.py,
``FlagLedger.limited_attempt``): a system account's secret at ``POST /api/v1/system/token`` as a staff
member's password at ``POST /api/v1/sign-in``, in the console and with ``flagledger staff token``. Every sign-in
is recorded by one helper, saying how the caller proved who it is.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ledger.app import Actor
from ledger.cli.main import main
from ledger.domain.identity import TokenGrant
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B
from tests.integration.test_api_console import login_field
from tests.support.api import client
from tests.support.staff import password_of


def _topics(node: Node, suffix: str) -> int:
    return sum(1 for _, _, env in node.app.envelopes() if env.header.topic.endswith(suffix))


def _grants(node: Node) -> list[TokenGrant]:
    return [
        node.app.signed_mapper.decode(env)  # type: ignore[misc]
        for _, _, env in node.app.envelopes()
        if env.header.topic.endswith("TokenGrant.Issued")
    ]


def _system(http: TestClient, account: str, secret: str) -> tuple[int, str]:
    r = http.post("/api/v1/system/token", json={"agency": A, "account": account, "secret": secret})
    return r.status_code, r.json().get("code", "")


def test_wrong_system_secrets_are_recorded_and_lock_the_account(sqlite_node: Node) -> None:
    """Threat: the network or a peer guessing the portal's secret at the token endpoint — each wrong secret is
    an event of the account's own stream, five lock it for 15 minutes even against the right secret; an
    administrator's new secret ends the lock (a recorded act). Guesses do not end the account's live tokens."""
    node, http = sqlite_node, client(sqlite_node)
    secret = node.app.enroll_system_account(Actor(A, "admin"), "portal", "portal")
    live = http.post("/api/v1/system/token", json={"agency": A, "account": "portal", "secret": secret}).json()
    headers = {"Authorization": "Bearer " + live["token"]}
    for _ in range(5):
        assert _system(http, "portal", secret + "x") == (401, "unauthenticated")
    assert _topics(node, "SystemAccount.SignInFailed") == 5
    assert _system(http, "portal", secret) == (401, "locked_out"), "locked even against the right secret"
    assert node.app.system_account(A, "portal").locked_until is not None
    assert http.get("/api/v1/whoami", headers=headers).status_code == 200, "a guess ends no live token"
    assert _system(http, "nobody", secret) == (401, "unauthenticated"), "an unknown account is no account"
    secret = node.app.replace_system_secret(Actor(A, "admin"), "portal")
    assert _system(http, "portal", secret) == (200, "")


def test_a_right_secret_clears_the_failures_and_the_sign_in_says_it_was_the_account_s_secret(
    sqlite_node: Node,
) -> None:
    """Threat: an administrator minting a program's access and passing it off as the program's own sign-in —
    the grant says how it was obtained: ``account_secret`` (the account's own secret), issuer the account;
    a staff sign-in is recorded by the same helper, ``password``."""
    node, http = sqlite_node, client(sqlite_node)
    secret = node.app.enroll_system_account(Actor(A, "admin"), "portal", "portal")
    for _ in range(4):
        _system(http, "portal", "fls1_" + "0" * 43)
    assert _system(http, "portal", secret)[0] == 200
    assert node.app.system_account(A, "portal").failures == 0 and _topics(node, "SystemAccount.FailuresCleared") == 1
    assert _system(http, "portal", "fls1_" + "0" * 43)[1] == "unauthenticated", "counted from zero again"
    staff = http.post("/api/v1/sign-in", json={"agency": B, "staff": "counter", "password": password_of(B, "counter")})
    assert staff.status_code == 200
    system_grant, staff_grant = _grants(node)[-2:]
    assert (system_grant.issuer, system_grant.staff, system_grant.via) == ("portal", "portal", "account_secret")
    assert (staff_grant.issuer, staff_grant.staff, staff_grant.via) == ("counter", "counter", "password")


def test_five_wrong_passwords_across_api_console_and_cli_lock_one_credential(
    sqlite_node: Node, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: a perpetrator or colleague guessing a clerk's password who spreads the guesses over the doors —
    the API, the console and ``flagledger staff token`` count against one credential: two wrong at the API,
    two in the console and one at the command line lock it, and the right password is refused everywhere."""
    node, http = sqlite_node, client(sqlite_node)
    wrong = {"agency": B, "staff": "counter", "password": "not-the-counter-password"}
    for _ in range(2):
        assert http.post("/api/v1/sign-in", json=wrong).json()["code"] == "wrong_password"
    for _ in range(2):
        r = http.post("/console/login", data={**wrong, "csrf": login_field(http)})
        assert r.status_code == 401
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", "not-the-counter-password")
    assert main(["--data-dir", str(node.config.data_dir), "staff", "token", "--as", f"{B}/counter"]) != 0
    assert "wrong_password" in capsys.readouterr().err
    assert _topics(node, "StaffCredential.UnlockFailed") == 5
    right = {**wrong, "password": password_of(B, "counter")}
    assert http.post("/api/v1/sign-in", json=right).json()["code"] == "locked_out"
    page = http.post("/console/login", data={**right, "csrf": login_field(http)})
    assert page.status_code == 401 and "locked" in page.text
