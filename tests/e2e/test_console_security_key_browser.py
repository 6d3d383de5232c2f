"""Security keys in real headless Chromium, with the browser's own virtual WebAuthn authenticator (DevTools
protocol ``WebAuthn.addVirtualAuthenticator``): a requester, an approver and an operator each sign in with
their own password, register their own key (certified in the roster by their staff key) and sign in again with
password + key; the flag request is made, approved and executed in the console by the three of them, each act
signed by that person's own security key — a ``navigator.credentials.get`` whose challenge is the SHA-256 of
the act's statement — each through a session only their own key opened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from ledger.app import Actor
from ledger.log.staff_roster import check_evidence
from ledger.log.webauthn_proof import unb64url
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import B
from tests.e2e.test_console_browser import CHROMIUM, VIEWPORT, browser, server  # noqa: F401 (fixtures)
from tests.support.axe import assert_accessible
from tests.support.staff import password_of

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: bash deploy/browser-deps.sh")


def _with_key(browser: Any) -> Any:  # noqa: F811 (the fixture's value)
    """A fresh browser window holding a virtual security key of its own (a USB key that is always touched)."""
    page = browser.new_context(viewport=VIEWPORT, locale="ja-JP").new_page()
    page.set_default_timeout(90_000)  # a loaded two-CPU machine: the ceremonies take seconds, not milliseconds
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return page


def _password_sign_in(page: Any, base: str, node: Node, staff: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#agency", B)
    page.fill("#staff", staff)
    page.fill("#password", password_of(B, staff))
    page.click("button[type=submit]")


def _enrol_key_and_sign_in(page: Any, base: str, node: Node, staff: str) -> None:
    _password_sign_in(page, base, node, staff)
    page.wait_for_url(f"{base}/console/")
    page.click("header nav a:has-text('セキュリティキー')")
    page.click("button[data-webauthn=register]")
    page.wait_for_url(lambda url: url.endswith("/console/login?done=key_registered"))
    assert "セキュリティキーを登録しました" in page.locator(".notice").inner_text()
    _password_sign_in(page, base, node, staff)
    page.wait_for_url(f"{base}/console/login/key")
    assert_accessible(page, "login-key-step")  # the security-key step of signing in: 0 axe violations too
    page.click("button[data-webauthn=sign_in]")
    page.wait_for_url(f"{base}/console/")
    assert page.locator("header .who").inner_text().startswith(f"B市 / {staff}")


def test_request_approve_execute_by_three_people_through_their_own_password_and_key(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    sqlite_node: Node,
    person: Callable[[], str],
) -> None:
    """Threat: an administrator and a shell user. Each console session that requests, approves or executes was
    opened by that person's own password and security key (the DevTools authenticator stands in for it), and
    each act carries that person's own security key's assertion over that act (not a signature the server
    made with a key it holds), checked as a peer would check it; a window with the approver's password but
    another key gets no further than the key step."""
    node, x = sqlite_node, person()
    base = server.replace("127.0.0.1", "localhost")  # a WebAuthn relying party is a host name, not an address

    requester = _with_key(browser)
    _enrol_key_and_sign_in(requester, base, node, "req")
    requester.click("header nav a:has-text('フラグ申請')")
    requester.fill("#subject", x)
    requester.check("#flag-NON_DISCLOSURE")
    requester.check("#flag-NO_AUTO_RESPONSE")
    requester.click("button:has-text('申請する')")  # webauthn.js asks the key to sign the request, then sends it
    requester.wait_for_url(lambda url: "done=requested" in url)
    assert "申請しました" in requester.locator(".notice").inner_text()
    (rid,) = [r.request_id for r in views.work_queue(node, Actor(B, "apr")).approvals]

    approver = _with_key(browser)
    _enrol_key_and_sign_in(approver, base, node, "apr")
    approver.goto(f"{base}/console/approvals")
    approver.locator(f"tr[data-request='{rid}'] button:has-text('承認')").click()
    approver.wait_for_url(lambda url: "done=approved" in url)
    assert "承認しました" in approver.locator(".notice").inner_text()
    assert node.app.flag_request(UUID(str(rid))).status == "approved"

    intruder = _with_key(browser)  # knows the approver's password, holds a key of its own
    _password_sign_in(intruder, base, node, "apr")
    intruder.wait_for_url(f"{base}/console/login/key")
    intruder.click("button[data-webauthn=sign_in]")
    intruder.wait_for_selector("#webauthn-status:has-text('確認できませんでした')")
    intruder.goto(f"{base}/console/")
    assert "/console/login" in intruder.url, "no session without the approver's own key"

    operator = _with_key(browser)
    _enrol_key_and_sign_in(operator, base, node, "op")
    operator.goto(f"{base}/console/approvals")
    operator.locator(f"tr[data-request='{rid}'] button:has-text('実行')").click()
    operator.wait_for_url(lambda url: "done=executed" in url)
    assert "実行しました" in operator.locator(".notice").inner_text()
    request = node.app.flag_request(UUID(str(rid)))
    assert (request.status, request.requested_by, request.approvals, request.decided_by) == (
        "executed",
        "req",
        ["apr"],
        "op",
    )
    (flags_set,) = [
        node.app.signed_mapper.decode(env)
        for _, _, env in node.app.envelopes()
        if env.header.topic.endswith("Protection.FlagsSet")
    ]
    evidence = flags_set.evidence  # type: ignore[attr-defined]
    assert [(a["act"], a["staff"]) for a in evidence["acts"]] == [
        ("requested", "req"),
        ("approved", "apr"),
        ("executed", "op"),
    ]
    assert check_evidence(node.app.roster(B), "FlagsSet", vars(flags_set)) is None, "verifies as a peer checks it"
    for act in evidence["acts"]:  # each signed by the person's certified security key, with its assertion
        (certified,) = node.app.certified_security_keys(B, act["staff"])
        assert act["key_id"] == certified.key_id and {"authenticator_data", "client_data"} <= act.keys()
        client_data = json.loads(unb64url(act["client_data"]))
        assert client_data["type"] == "webauthn.get" and client_data["origin"] == base
    uses = [env for _, _, env in node.app.envelopes() if env.header.topic.endswith("SecurityKeys.Used")]
    assert len(uses) == 3, "one recorded key sign-in each for the requester, the approver and the operator"
