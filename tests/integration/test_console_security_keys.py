"""A staff member registers a security key (WebAuthn) in the console, and from then on the console opens only
after that key answers, whatever the first factor was. A software authenticator plays the key
(tests/support/soft_authenticator.py); the same in real Chromium with its virtual authenticator is in
tests/e2e/test_console_security_key_browser.py.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.integration.test_api_console import login_field, signed_in
from tests.support.api import client, token
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.staff import password_of

ORIGIN = "https://testserver"


def _register(http: TestClient, csrf: str, key: SoftAuthenticator) -> Any:
    options = http.post("/console/security-keys/options", headers={"X-CSRF": csrf})
    assert options.status_code == 200, options.text
    assert options.json()["rp"]["id"] == "testserver"
    return http.post(
        "/console/security-keys", headers={"X-CSRF": csrf}, json={"credential": key.create(options.json(), ORIGIN)}
    )


def _first_factor(node: Node, staff: str = "apr") -> TestClient:
    http = client(node)
    data = {"agency": B, "staff": staff, "password": password_of(B, staff), "csrf": login_field(http)}
    r = http.post("/console/login", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login/key", "on to the key"
    assert "flagledger_session" not in r.headers["set-cookie"], "no session before the key answers"
    return http


def _key_step(http: TestClient, key: SoftAuthenticator, **kw: Any) -> Any:
    options = http.post("/console/login/key/options")
    assert options.status_code == 200, options.text
    return http.post("/console/login/key", json={"credential": key.get(options.json(), ORIGIN, **kw)})


def _recorded(node: Node, event: str) -> int:
    return sum(1 for _, _, env in node.app.envelopes() if env.header.topic.endswith(f"SecurityKeys.{event}"))


def test_after_registering_a_key_the_console_opens_only_with_it(sqlite_node: Node) -> None:
    """Threat: an administrator or a shell user. A token someone else minted for the clerk (or copied out of
    their browser) no longer opens the console once the clerk has a key: the key is in the clerk's hand."""
    node, key = sqlite_node, SoftAuthenticator()
    minted = client(node)  # an administrator's token pasted straight into the cookie
    minted.cookies.set("flagledger_session", token(node, B, "apr"))
    assert minted.get("/console/", follow_redirects=False).status_code == 200, "before: a token is enough"
    http, csrf = signed_in(node, B, "apr")
    assert http.get("/console/security-keys").status_code == 200
    done = _register(http, csrf, key)
    assert done.status_code == 200 and done.json()["registered"] is True
    assert _recorded(node, "Registered") == 1
    assert http.get("/console/", follow_redirects=False).status_code == 303, "the keyless session has ended"

    assert minted.get("/console/", follow_redirects=False).status_code == 303, "after: the key is needed"

    http = _first_factor(node)
    assert "セキュリティキーで確認" in http.get("/console/login/key").text
    answer = _key_step(http, key)
    assert answer.status_code == 200 and answer.json()["next"] == "/console/"
    home = http.get("/console/")
    assert home.status_code == 200 and "B市 / apr" in home.text
    assert _recorded(node, "Used") == 1
    vias = [
        node.app.signed_mapper.decode(env).via  # type: ignore[attr-defined]
        for _, _, env in node.app.envelopes()
        if env.header.topic.endswith("TokenGrant.Issued")
    ]
    assert "password_key" in vias, "the session is recorded with how it was obtained"


def test_another_key_a_replayed_answer_or_a_counter_going_back_is_refused(sqlite_node: Node) -> None:
    """Threat: a perpetrator with a stolen first factor, the network replaying a captured answer, and a
    copied (cloned) key whose counter lags behind the original's."""
    node, key = sqlite_node, SoftAuthenticator()
    http, csrf = signed_in(node, B, "apr")
    assert _register(http, csrf, key).status_code == 200

    stranger = _first_factor(node)
    assert _key_step(stranger, SoftAuthenticator()).status_code == 401, "a key that is not the clerk's"

    first = _first_factor(node)
    options = first.post("/console/login/key/options").json()
    answer = key.get(options, ORIGIN)
    assert first.post("/console/login/key", json={"credential": answer}).status_code == 200
    again = _first_factor(node)
    again.post("/console/login/key/options")
    replayed = again.post("/console/login/key", json={"credential": answer})
    assert replayed.status_code == 401, "an answer to another challenge"

    cloned = _first_factor(node)
    assert _key_step(cloned, key, counter=1).status_code == 401, "the counter went back"
    assert _recorded(node, "Used") == 1, "only the one good sign-in is recorded"
    assert "flagledger_session" not in cloned.cookies


def test_a_key_is_registered_only_from_the_console_itself(sqlite_node: Node) -> None:
    """Threat: a perpetrator's web page (cross-site request). Registering a key of the attacker's on a clerk's
    account needs the session's CSRF value, which another site cannot read."""
    node = sqlite_node
    http, csrf = signed_in(node, B, "apr")
    assert http.post("/console/security-keys/options", headers={"X-CSRF": "0" * 64}).status_code == 403
    assert http.post("/console/security-keys/options").status_code == 422, "no header at all"
    options = http.post("/console/security-keys/options", headers={"X-CSRF": csrf}).json()
    credential = SoftAuthenticator().create(options, "https://evil.example")  # made for another origin
    r = http.post("/console/security-keys", headers={"X-CSRF": csrf}, json={"credential": credential})
    assert r.status_code == 401 and _recorded(node, "Registered") == 0
    assert client(node).post("/console/login/key/options").status_code == 401, "no first factor, no challenge"
