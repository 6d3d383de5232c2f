"""Security keys in real headless Chromium, with the browser's own virtual WebAuthn authenticator (DevTools
protocol ``WebAuthn.addVirtualAuthenticator``): an approver and an operator each register their own key, sign
in with it, and the flag request goes pending → approved → executed by two different people, each through a
session only their own key opened. (The requester's signed request comes through the app: the console has no
request page yet.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.e2e.test_console_browser import CHROMIUM, VIEWPORT, browser, server  # noqa: F401 (fixtures)
from tests.support.api import token

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


def _token_sign_in(page: Any, base: str, node: Node, staff: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#token", token(node, B, staff))
    page.click("button[type=submit]")


def _enrol_key_and_sign_in(page: Any, base: str, node: Node, staff: str) -> None:
    _token_sign_in(page, base, node, staff)
    page.wait_for_url(f"{base}/console/")
    page.click("header nav a:has-text('セキュリティキー')")
    page.click("button[data-webauthn=register]")
    page.wait_for_url(lambda url: url.endswith("/console/login?done=key_registered"))
    assert "セキュリティキーを登録しました" in page.locator(".notice").inner_text()
    _token_sign_in(page, base, node, staff)
    page.wait_for_url(f"{base}/console/login/key")
    page.click("button[data-webauthn=sign_in]")
    page.wait_for_url(f"{base}/console/")
    assert page.locator("header .who").inner_text().startswith(f"{B} / {staff}")


def test_approver_and_operator_act_through_their_own_keys(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    sqlite_node: Node,
    person: Callable[[], str],
) -> None:
    """Threat: an administrator and a shell user. Each console session that approves or executes was opened
    by that person's own security key (the DevTools authenticator stands in for it); a window without the
    approver's key, holding only a token for the approver, gets no further than the key step."""
    node = sqlite_node
    base = server.replace("127.0.0.1", "localhost")  # a WebAuthn relying party is a host name, not an address
    rid = str(node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"]))

    approver = _with_key(browser)
    _enrol_key_and_sign_in(approver, base, node, "apr")
    approver.goto(f"{base}/console/approvals")
    approver.locator(f"tr[data-request='{rid}'] button:has-text('承認')").click()
    assert "承認しました" in approver.locator(".notice").inner_text()
    assert node.app.flag_request(UUID(rid)).status == "approved"

    intruder = _with_key(browser)  # a key of its own, not the approver's
    _token_sign_in(intruder, base, node, "apr")
    intruder.wait_for_url(f"{base}/console/login/key")
    intruder.click("button[data-webauthn=sign_in]")
    intruder.wait_for_selector("#webauthn-status:has-text('確認できませんでした')")
    intruder.goto(f"{base}/console/")
    assert "/console/login" in intruder.url, "no session without the approver's own key"

    operator = _with_key(browser)
    _enrol_key_and_sign_in(operator, base, node, "op")
    operator.goto(f"{base}/console/approvals")
    operator.locator(f"tr[data-request='{rid}'] button:has-text('実行')").click()
    assert "実行しました" in operator.locator(".notice").inner_text()
    request = node.app.flag_request(UUID(rid))
    assert request.status == "executed" and request.approvals == ["apr"] and request.decided_by == "op"
    uses = [env for _, _, env in node.app.envelopes() if env.header.topic.endswith("SecurityKeys.Used")]
    assert len(uses) == 2, "one recorded key sign-in each for the approver and the operator"
