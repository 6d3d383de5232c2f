"""The staff console in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright for Python),
against `uvicorn` serving a real SQLite node: sign in, approve a flag, the banner at another agency's
counter, deciding a held request. Screenshots go to tests/artifacts/console/ (gitignored). Every page shot is
also checked by axe-core for WCAG 2.1 A/AA violations (none allowed): an administrator or staff member who cannot
read or reach a control on a page makes wrong clicks on protection acts.

Chromium comes from `deploy/browser-deps.sh` (called by `bash deploy/dev.sh test`); `playwright install` is
never used.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pyotp
import pytest
import uvicorn

from ledger.api import create_app
from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.support.answers import release_decided
from tests.support.axe import assert_accessible, axe_violations
from tests.support.staff import password_of

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
VIEWPORT = {"width": 1366, "height": 768}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: bash deploy/browser-deps.sh")


@pytest.fixture
def server(sqlite_node: Node) -> Iterator[str]:
    """uvicorn on a free loopback port, in a thread; stopped (and joined) at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(sqlite_node), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def sign_in(browser: Any, base: str, node: Node, agency: str, staff: str) -> Any:
    page = browser.new_context(viewport=VIEWPORT, locale="ja-JP").new_page()
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/login?expired=1"), "no session: the console sends you to sign in"
    page.fill("#agency", agency)
    page.fill("#staff", staff)
    page.fill("#password", password_of(agency, staff))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/")
    name = node.app.agency(agency).name
    assert page.locator("header .who").inner_text().startswith(f"{name} / {staff}"), "agency names, not codes"
    return page


def shot(page: Any, name: str) -> None:
    """A screenshot, and the checks every console page must pass: fits a 1366px screen, 0 axe violations."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"{name}: page is {width}px wide, more than a 1366px screen"
    assert_accessible(page, name)


def test_console_flows_in_chromium(server: str, browser: Any, sqlite_node: Node, person: Callable[[], str]) -> None:
    node, x = sqlite_node, person()
    rid = str(node.app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]))

    # sign in with a password; a wrong one is refused on the page
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(f"{server}/console/login")
    page.fill("#agency", B)
    page.fill("#staff", "apr")
    page.fill("#password", "a guess")
    page.click("button[type=submit]")
    assert "サインインできません" in page.locator(".error").inner_text()
    shot(page, "01-sign-in-refused")

    # approve the flag at B, then B's operator executes it
    apr = sign_in(browser, server, node, B, "apr")
    shot(apr, "02-home")
    apr.click("text=承認待ち")
    row = apr.locator(f"tr[data-request='{rid}']")
    assert "承認待ち" in row.inner_text() and "不開示" in row.inner_text()
    shot(apr, "03-approval-queue")
    row.locator("button:has-text('承認')").click()
    assert "承認しました" in apr.locator(".notice").inner_text()
    assert node.app.flag_request(UUID(rid)).status == "approved"
    for path, name in [("reviews", "03a-reviews"), ("security-keys", "03b-keys"), ("one-time-codes", "03c-codes")]:
        apr.goto(f"{server}/console/{path}")
        shot(apr, name)
    req = sign_in(browser, server, node, B, "req")
    req.goto(f"{server}/console/requests/new")
    shot(req, "03d-flag-request-form")
    req.goto(f"{server}/console/references")
    req.fill("#subject", x)
    req.fill("#reference", "B-0042")
    req.click("button:has-text('登録する')")
    assert "宛名番号を登録しました" in req.locator(".notice").inner_text()
    shot(req, "03e-reference-numbers")
    apr.goto(f"{server}/console/approvals")
    assert "B-0042" in apr.locator(f"tr[data-request='{rid}']").inner_text(), "the person by B's own number"
    assert node.app.subject(x) not in apr.content() and x not in apr.content()
    op = sign_in(browser, server, node, B, "op")
    op.goto(f"{server}/console/approvals")
    op.locator(f"tr[data-request='{rid}'] button:has-text('実行')").click()
    assert "実行しました" in op.locator(".notice").inner_text()

    # the banner at another agency's counter: protected, flags, liaison reference, never B
    clerk = sign_in(browser, server, node, A, "counter")
    assert clerk.locator("header nav a:has-text('保留中の照会')").count() == 0, "held requests: deciders only"
    clerk.click("text=窓口照会")
    clerk.fill("#subject", x)
    clerk.click("button:has-text('照会')")
    banner = clerk.locator("#protection-banner")
    assert banner.is_visible() and "保護対象者です" in banner.inner_text()
    assert "不開示" in banner.inner_text() and "自動応答不可" in banner.inner_text() and "L-" in banner.inner_text()
    assert B not in clerk.content() and "B市" not in clerk.content(), "no other agency learns who protects"
    color = banner.evaluate("e => getComputedStyle(e).backgroundColor")
    assert color == "rgb(176, 0, 32)", "a clear (red) banner"
    shot(clerk, "04-counter-banner-other-agency")

    # a query from A to provider C is held; C's reviewer checks who asks and proposes, C's approver decides
    q = node.app.request_provision(
        Actor(A, "counter"), C, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id
    rev = sign_in(browser, server, node, C, "rev")
    rev.click("text=保留中の照会")
    held = rev.locator(f"tr[data-request='{q}']")
    assert "A市" in held.inner_text() and "児童手当" in held.inner_text()
    held.locator("select[name=applicant_check]").select_option("known_perpetrator")
    held.locator("input[value=refuse]").check()
    held.locator("button:has-text('判断案を登録')").click()
    assert "判断案を登録しました" in rev.locator(".notice").inner_text()
    assert rev.locator("button:has-text('判断を承認')").count() == 0, "the reviewer does not approve their own"
    shot(rev, "05-held-request-proposed")
    decider = sign_in(browser, server, node, C, "apr")
    decider.goto(f"{server}/console/held")
    decider.locator(f"tr[data-request='{q}'] button:has-text('判断を承認')").click()
    assert "判断を確定しました" in decider.locator(".notice").inner_text()
    assert decider.locator(f"tr[data-request='{q}']").count() == 0
    assert node.app.querier_answer(UUID(q)).status == "in_progress", "until C's batch time"
    release_decided(node.app)
    assert node.app.querier_answer(UUID(q)).status == "not_provided"
    shot(decider, "06-held-request-decided")

    # an auditor reads the person's timeline, stating a purpose; the read itself is recorded and shown
    aud = sign_in(browser, server, node, B, "aud")
    aud.click("header nav >> text=対象者の履歴（監査）")
    aud.fill("#subject", x)
    aud.fill("#purpose", "苦情調査")
    aud.click("button:has-text('表示')")
    events = aud.locator("table").inner_text()
    assert "Protection.FlagsSet" in events, "B's own flags"
    assert "ProvisionRequest" not in events, "C's held request is C's: a timeline shows its reader's agency only"
    assert "AccessRecord.ProtectedDetailsRead" in events, "the auditor's own read is on the timeline"
    shot(aud, "07-auditor-timeline")

    # the year's pages, each checked by axe: a handover at C after x moved there from B, a number change asked
    # at C and approved by another person, a proxy registered, B's probe notice of A's earlier query
    node.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=node.app.clock().date())
    creq = sign_in(browser, server, node, C, "req")
    creq.click("header nav >> text=年間業務")
    assert "不開示" in creq.locator("#handovers").inner_text() and "宛名番号未登録" in creq.content()
    assert "B市" not in creq.content(), "the new municipality is not told who protects the person"
    shot(creq, "08-year-handover")
    old, new = person(), person()
    creq.click("header nav >> text=番号変更")
    creq.fill("#old", old)
    creq.fill("#new", new)
    creq.fill("#reason", "個人番号変更通知")
    creq.click("button:has-text('紐付けを申請する')")
    assert "申請しました" in creq.locator(".notice").inner_text()
    shot(creq, "09-number-change-requested")
    capr = sign_in(browser, server, node, C, "apr")
    capr.goto(f"{server}/console/number-changes")
    shot(capr, "10-number-change-to-approve")
    capr.locator("#link-requests button:has-text('承認')").click()
    assert "承認しました" in capr.locator(".notice").inner_text()
    assert node.state.linked(node.app.subject(old)) is not None
    creq.click('header nav >> a[href="/console/proxies"]')  # not 代理人の閲覧承認, whose text contains it
    creq.fill("#reg-subject", x)
    creq.fill("#reg-proxy", person())
    creq.click("button:has-text('代理人を登録する')")
    assert "代理人を登録しました" in creq.locator(".notice").inner_text()
    shot(creq, "11-proxy-registered")
    creq.click('header nav >> a[href="/console/proxy-approvals"]')
    assert creq.locator("h1").first.inner_text(), "the holder's proxy approvals page renders"
    shot(creq, "11b-proxy-approvals")
    brev = sign_in(browser, server, node, B, "rev")
    brev.click("header nav >> text=照会の通知")
    assert "A市" in brev.locator("#probes").inner_text()
    shot(brev, "12-probe-notices")

    # signing out ends the session
    decider.click("button:has-text('サインアウト')")
    assert "サインアウトしました" in decider.locator(".notice").inner_text()
    decider.goto(f"{server}/console/held")
    assert "/console/login" in decider.url


def test_the_code_step_and_a_refusal_page_in_chromium(server: str, browser: Any, sqlite_node: Node) -> None:
    """Administrator / staff: the pages around the work pass axe too — the one-time-code step of signing in
    (as asked, and after a wrong code) and the page a refused act or page shows — and the code step lets in
    only the right code."""
    node = sqlite_node
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret, interval=30)
    node.app.register_one_time_codes(Actor(B, "counter"), secret, totp.now())
    page = browser.new_context(viewport=VIEWPORT, locale="ja-JP").new_page()
    page.goto(f"{server}/console/login")
    page.fill("#agency", B)
    page.fill("#staff", "counter")
    page.fill("#password", password_of(B, "counter"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/console/login/code")
    shot(page, "13-one-time-code-step")
    page.fill("#code", "000000")
    page.click("button:has-text('確認')")
    assert "確認できません" in page.locator(".error").inner_text()
    shot(page, "14-one-time-code-refused")
    page.fill("#code", totp.at(time.time() + 30))
    page.click("button:has-text('確認')")
    page.wait_for_url(f"{server}/console/")
    page.goto(f"{server}/console/held")  # a clerk decides no held request: the refusal page
    assert "この操作はできません" in page.content() and "role_not_permitted" in page.locator(".error").inner_text()
    shot(page, "15-refused-page")


def test_axe_finds_a_violation(browser: Any) -> None:
    """The accessibility check itself can fail (administrator/staff: a check that always passes would let an
    unlabelled control on a protection act through): an input with no label and low-contrast text are caught."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_content(
        '<html lang="ja"><title>t</title><main><input type="text" name="x">'
        '<p style="color:#bbb;background:#fff">薄い文字</p></main></html>'
    )
    found = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= found, found
