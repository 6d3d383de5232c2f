"""A municipality's whole year in the console, in real headless Chromium (issue #21, docs/year.md): intake at B
with a companion (X fled with her child K; Y, the perpetrator, is K's parent), the victim's and the companion's
flags requested, approved and executed by three people, a guardian bar on Y, X's and K's move to C recorded at
B, C's own staff taking over from the 年間業務 page through C's chain, then B releasing. Every page is checked by
axe-core; the state after each step is asserted through the app, not only the page text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger.api.console_references import record_reference
from ledger.app import Actor
from ledger.domain.flags import FlagRequest
from ledger.log.staff_roster import check_acts
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import SC, A, B, C
from tests.e2e.test_console_browser import CHROMIUM, browser, server, shot, sign_in  # noqa: F401 (fixtures)
from tests.e2e.test_console_security_key_browser import _enrol_key_and_sign_in, _with_key

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: bash deploy/browser-deps.sh")

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
BOTH = [ND, NAR]


def _query(node: Node, provider: str, who: str) -> str:
    """A's counter asks ``provider`` about ``who`` (Y applying at A): the status A's counter can tell Y."""
    answer = node.app.request_provision(
        Actor(A, "counter"), provider, who, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    return answer.status


def _requests(node: Node, subject: str, agency: str, status: str) -> list[FlagRequest]:
    s = node.app.subject(subject)
    return [
        r
        for r in node.app._aggregates(FlagRequest, "Requested")
        if r.subject == s and r.agency == agency and r.status == status
    ]


def _holders(node: Node, subject: str) -> dict[str, set[str]]:
    return {f: set(who) for f, who in node.app.holders_anywhere(node.app.subject(subject)).items()}


def _approve_and_execute(node: Node, apr: Any, op: Any, base: str, agency: str, subjects: list[str]) -> None:
    """The approver approves, then the operator executes, each pending request on ``subjects`` at ``agency``,
    each in their own signed-in window; the three acts are three people's (asserted from the log)."""
    pending = [r for s in subjects for r in _requests(node, s, agency, "pending")]
    assert pending, "something to approve"
    for r in pending:
        apr.goto(f"{base}/console/approvals")
        apr.locator(f"tr[data-request='{r.id}'] button:has-text('承認')").click()
        assert "承認しました" in apr.locator(".notice").inner_text()
    for r in pending:
        op.goto(f"{base}/console/approvals")
        op.locator(f"tr[data-request='{r.id}'] button:has-text('実行')").click()
        assert "実行しました" in op.locator(".notice").inner_text()
        done = node.app.flag_request(r.id)
        assert done.status == "executed"
        assert len({done.requested_by, *done.approvals, done.decided_by}) == 3, "three distinct people"


def _counter_at_a(clerk: Any, base: str, who: str) -> str:
    """What A's counter shows staff about ``who``: the banner must be there and name no holder."""
    clerk.goto(f"{base}/console/counter")
    clerk.fill("#subject", who)
    clerk.click("button:has-text('照会')")
    banner = clerk.locator("#protection-banner")
    assert banner.is_visible() and "保護対象者です" in banner.inner_text()
    page: str = clerk.content()
    assert "B市" not in page and "C市" not in page and B not in page and C not in page, "who protects is not shown"
    return page


def test_intake_with_a_companion_to_handover_and_release_in_chromium(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    sqlite_node: Node,
    person: Callable[[], str],
) -> None:
    """Threat: the perpetrator (Y asks A's counter about X and the child K, and uses the portal as K's proxy:
    after each step the queries are held, the counter shows no holder, and the bar refuses Y's proxy view) and
    the administrator / shell user (each act is made by a distinct signed-in person, four eyes enforced by the
    app: the requester's pages offer no approval, and the log names three people on each request)."""
    node, app = sqlite_node, sqlite_node.app
    x, k, y = person(), person(), person()
    app.register_proxy(Actor(A, "req"), k, y)  # Y, K's parent, is K's registered proxy at A
    assert _query(node, B, k) == "answered", "before the intake B answers about K automatically (the leak)"

    # -- intake at B: the case, the victim's flags, the companion with flags of K's own -------------------------
    breq = sign_in(browser, server, node, B, "req")
    breq.click("header nav >> text=受付・同伴者")
    shot(breq, "year-01-intake-form")
    breq.fill("#victim", x)
    breq.fill("#victim-reference", "B-1001")
    breq.fill("#perpetrator", y)
    breq.fill("#perpetrator-reference", "B-1002")
    breq.click("button:has-text('受付を登録する')")
    assert "受付を登録しました" in breq.locator(".notice").inner_text()
    case_id = UUID(breq.url.split("/console/cases/")[1].split("?")[0])
    case = app.case(case_id)
    assert case.agency == B and case.victim == app.subject(x) and case.perpetrators == [app.subject(y)]
    breq.check("#victim-flag-NON_DISCLOSURE")
    breq.check("#victim-flag-NO_AUTO_RESPONSE")
    breq.click("button:has-text('被害者のフラグを申請する')")
    assert "申請しました" in breq.locator(".notice").inner_text()
    breq.fill("#companion", k)
    breq.fill("#companion-reference", "B-1003")
    breq.check("#companion-flag-NON_DISCLOSURE")
    breq.check("#companion-flag-NO_AUTO_RESPONSE")
    breq.click("button:has-text('同伴者のフラグを申請する')")
    assert "同伴者のフラグを申請しました" in breq.locator(".notice").inner_text()
    assert "B-1003" in breq.locator("#companions").inner_text() and "申請中" in breq.locator("#companions").inner_text()
    for secret in (x, k, y, app.subject(x), app.subject(k), app.subject(y)):
        assert secret not in breq.content(), "no number or pseudonym on the case page, not even hidden"
    shot(breq, "year-02-case-with-companion")
    assert [r.case_id for r in _requests(node, x, B, "pending")] == [case_id]
    assert [r.flags for r in _requests(node, k, B, "pending")] == [BOTH]
    assert app.case(case_id).attached_companions == [], "nothing protects K before four eyes"
    assert _query(node, B, k) == "answered", "a request alone protects nobody"
    breq.goto(f"{server}/console/approvals")
    assert breq.locator("button:has-text('承認')").count() == 0, "the requester is offered no approval"

    # -- flags: B's approver approves, B's operator executes (three people) ---------------------------------------
    bapr = sign_in(browser, server, node, B, "apr")
    bop = sign_in(browser, server, node, B, "op")
    _approve_and_execute(node, bapr, bop, server, B, [x, k])
    assert app.case(case_id).attached_companions == [app.subject(k)], "K attached by the executed request"
    assert _holders(node, x) == _holders(node, k) == {ND: {B}, NAR: {B}}
    assert _query(node, B, k) == "in_progress" == _query(node, B, x), "queries about K are held like X's"
    clerk = sign_in(browser, server, node, A, "counter")
    _counter_at_a(clerk, server, k)
    shot(clerk, "year-03-counter-companion")

    # -- a guardian bar on Y (親権者), four eyes ------------------------------------------------------------------
    assert views.portal_records(node, y, k).access != "none", "Y still sees K's records as proxy"
    breq.click("header nav >> text=親権者等の制限")
    breq.fill("#bar-subject", k)
    breq.fill("#bar-guardian", y)
    breq.select_option("#bar-relation", "parent")
    breq.click("button:has-text('制限を申請する')")
    assert "制限を申請しました" in breq.locator(".notice").inner_text()
    assert breq.locator("button:has-text('制限を承認')").count() == 0, "the proposer is offered no approval"
    assert not app.barred(k, y), "proposed is not in force"
    bapr.goto(f"{server}/console/guardian-bars")
    shot(bapr, "year-04-guardian-bar-to-approve")
    bapr.locator("#bars button:has-text('制限を承認')").click()
    assert "制限を承認しました" in bapr.locator(".notice").inner_text()
    assert app.barred(k, y)
    assert views.portal_records(node, y, k) == views.PortalView("none", ()), "Y's proxy view of K is refused"
    assert "B-1003" in bapr.locator("#bars").inner_text() and "有効" in bapr.locator("#bars").inner_text()

    # -- the handover: X and K move to C, recorded at B (転出); C's staff take over through C's chain -------------
    today = app.clock().date().isoformat()
    for who in (x, k):
        breq.goto(f"{server}/console/year")
        breq.fill("#move-subject", who)
        breq.fill("#move-to", C)
        breq.fill("#move-on", today)
        breq.click("button:has-text('転居を記録する')")
        assert "転居を記録しました" in breq.locator(".notice").inner_text()
        move = app.latest_move(app.subject(who))
        assert move is not None and (move.from_agency, move.to_agency, move.recorded_by) == (B, C, "req")
    creq = sign_in(browser, server, node, C, "req")
    creq.click("header nav >> text=年間業務")
    assert creq.locator("#handovers tr").count() == 3, "two handovers (and the header row)"
    assert "B市" not in creq.content() and B not in creq.content(), "the new municipality is not told who protects"
    shot(creq, "year-05-handover-at-c")
    for who in (x, k):
        move = app.latest_move(app.subject(who))
        assert move is not None
        creq.locator(f"form[action='/console/year/handovers/{move.id}'] button").click()
        assert "申請しました" in creq.locator(".notice").inner_text()
        assert creq.locator(f"form[action='/console/year/handovers/{move.id}']").count() == 0, "asked once"
    assert creq.locator("#handovers").inner_text().count("申請済み") == 2
    capr = sign_in(browser, server, node, C, "apr")
    cop = sign_in(browser, server, node, C, "op")
    _approve_and_execute(node, capr, cop, server, C, [x, k])
    assert _holders(node, x) == _holders(node, k) == {ND: {B, C}, NAR: {B, C}}
    creq.goto(f"{server}/console/year")
    assert "引継ぎ待ちの転入はありません" in creq.content(), "the handover leaves C's queue once C holds"
    assert _query(node, C, k) == "in_progress" == _query(node, C, x), "queries to C are held"
    _counter_at_a(clerk, server, x)

    # -- B lets go: a release requested, approved and executed at B (C holds, so no last-holder step) ------------
    for who in (x, k):
        breq.goto(f"{server}/console/requests/new")
        breq.fill("#subject", who)
        breq.check("input[name=kind][value=release]")
        breq.check("#flag-NON_DISCLOSURE")
        breq.check("#flag-NO_AUTO_RESPONSE")
        breq.fill("#explanation", "転出先で保護を引き継いだため")
        breq.click("button:has-text('申請する')")
        assert "申請しました" in breq.locator(".notice").inner_text()
    assert all(r.kind == "release" for s in (x, k) for r in _requests(node, s, B, "pending"))
    _approve_and_execute(node, bapr, bop, server, B, [x, k])
    assert _holders(node, x) == _holders(node, k) == {ND: {C}, NAR: {C}}, "C alone protects X and K"
    assert _query(node, B, k) == "in_progress" == _query(node, C, x), "still held, wherever Y asks"
    assert views.portal_records(node, y, k) == views.PortalView("none", ()), "the bar holds while C's flags do"
    page = _counter_at_a(clerk, server, k)
    assert "自動応答不可" in page
    breq.goto(f"{server}/console/year")
    shot(breq, "year-06-year-page-after-release")

    # -- the year page's other items, each with its form (checked by axe as the requester and the approver) -----
    z = person()
    app.record_application(Actor(B, "req"), z, app.clock().date() - timedelta(days=350))
    app.year_step(B)
    provisional = app.set_provisional(Actor(B, "op"), z, BOTH, explanation="夜間の緊急相談")
    app.propose_release_risk(Actor(B, "req"), z, [ND], "所在が知られうる")
    breq.goto(f"{server}/console/year")
    breq.locator("#terms input[name=note]").fill("本人の希望")
    breq.locator("#terms button:has-text('終了を提案')").click()
    assert "終了を提案しました" in breq.locator(".notice").inner_text()
    shot(breq, "year-07-year-items-requester")
    bapr.goto(f"{server}/console/year")
    shot(bapr, "year-08-year-items-approver")
    bapr.locator("#terms button:has-text('終了を承認')").click()
    assert "終了を承認しました" in bapr.locator(".notice").inner_text()
    term = app.term(B, z)
    assert term is not None and not term.open and app.holders_anywhere(app.subject(z)), "a lapse lifts no flag"
    bapr.locator(f"form[action='/console/year/provisional/{provisional}'] button").click()
    assert app.flag_request(provisional).co_approved_by == "apr"
    bapr.locator("#risks button:has-text('判断を承認')").click()
    assert [d["approved"] for d in app.release_risks(Actor(B, "apr"))] == [True]

    # -- a support centre's request: B answers it from its page, the centre reads each step (both pages by axe) --
    w = person()
    record_reference(node, Actor(B, "req"), w, "B-1004")
    bid = app.send_body_request(Actor(SC, "req"), B, w, [ND], "dv")
    breq.goto(f"{server}/console/")
    breq.click("text=依頼と対応へ")
    row = breq.locator(f"tr[data-body-request='{bid}']")
    assert "B-1004" in row.inner_text() and "未対応" in row.inner_text(), "the person by B's own 宛名番号"
    assert w not in breq.content() and app.subject(w) not in breq.content()
    shot(breq, "year-09-body-requests-at-b")
    row.locator("button:has-text('依頼どおり申請する')").click()
    assert "申請しました" in breq.locator(".notice").inner_text()
    assert "決裁中" in breq.locator(f"tr[data-body-request='{bid}']").inner_text()
    _approve_and_execute(node, bapr, bop, server, B, [w])
    assert _holders(node, w) == {ND: {B}}
    centre = sign_in(browser, server, node, SC, "req")
    centre.click("text=依頼と対応へ")
    steps = centre.locator("table").inner_text()
    assert "実施済み" in steps and "B市" in steps and "B-1004" not in steps, "the centre's page names no person"
    shot(centre, "year-10-body-requests-at-centre")


def test_year_acts_signed_by_security_keys_in_chromium(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    sqlite_node: Node,
    person: Callable[[], str],
) -> None:
    """Threat: an administrator and a shell user. With a security key certified, the intake's requests, the
    companion's, the two NON_DISCLOSURE requests the perpetrators' prompt opens with one button (one touch
    each) and a guardian bar's proposal and approval are each signed in the browser by that person's own
    key (webauthn.js asks the act's ``…/options``; the DevTools authenticator stands in for the key): every one
    of those events carries an assertion, none a signature the server made."""
    node, app = sqlite_node, sqlite_node.app
    x, k, y, y2 = person(), person(), person(), person()
    base = server.replace("127.0.0.1", "localhost")  # a WebAuthn relying party is a host name, not an address
    req = _with_key(browser)
    _enrol_key_and_sign_in(req, base, node, "req")
    req.click("header nav >> text=受付・同伴者")
    req.fill("#victim", x)
    req.fill("#perpetrator", y)
    req.click("button:has-text('受付を登録する')")
    req.wait_for_url(lambda url: "done=case_opened" in url)
    case_id = UUID(req.url.split("/console/cases/")[1].split("?")[0])
    app.add_perpetrator(Actor(B, "req"), case_id, y2)  # two perpetrators: one button, two requests, two touches
    req.check("#victim-flag-NON_DISCLOSURE")
    req.click("button:has-text('被害者のフラグを申請する')")
    req.wait_for_url(lambda url: "done=requested" in url)
    req.fill("#companion", k)
    req.check("#companion-flag-NON_DISCLOSURE")
    req.click("button:has-text('同伴者のフラグを申請する')")
    req.wait_for_url(lambda url: "done=companion_proposed" in url)
    req.goto(f"{base}/console/cases/{case_id}")
    assert req.locator("form[data-sign-acts]").count() == 1, "the perpetrators' prompt, signed per request"
    shot(req, "year-11-case-prompts-with-a-security-key")
    req.click("button:has-text('不開示を申請する')")  # webauthn.js: one touch per perpetrator, then one post
    req.wait_for_url(lambda url: "done=requested" in url)
    prompted = _requests(node, y, B, "pending") + _requests(node, y2, B, "pending")
    assert sorted(r.flags[0] for r in prompted) == [ND, ND] and len({r.id for r in prompted}) == 2
    assert req.locator("form[data-sign-acts]").count() == 0, "nothing left to prompt"
    req.goto(f"{base}/console/guardian-bars")
    req.fill("#bar-subject", k)
    req.fill("#bar-guardian", y)
    req.click("button:has-text('制限を申請する')")
    req.wait_for_url(lambda url: "done=bar_proposed" in url)
    apr = _with_key(browser)
    _enrol_key_and_sign_in(apr, base, node, "apr")
    apr.goto(f"{base}/console/guardian-bars")
    apr.locator("#bars button:has-text('制限を承認')").click()
    apr.wait_for_url(lambda url: "done=bar_approved" in url)
    assert app.barred(k, y) is False, "no flag protects K yet: a bar takes effect with the first one"
    (bar,) = app.guardian_bars(Actor(B, "apr"))
    assert bar["in_force"]
    acts = [
        vars(app.signed_mapper.decode(env))["staff_signature"]
        for _, _, env in app.envelopes()
        if env.header.topic.endswith(("FlagRequest.Requested", "GuardianBar.Proposed", "GuardianBar.Approved"))
    ]
    assert len(acts) == 6 and all("authenticator_data" in a and "client_data" in a for a in acts)
    assert len({a["client_data"] for a in acts}) == 6, "one assertion per act, the two prompted ones included"
    for r in prompted:  # each prompted request's own act verifies as one made alone (a peer: test_console_prompts)
        assert check_acts(app.roster(B), str(r.id), r.digest(), r.acts) is None
    assert {r.subject for r in _requests(node, x, B, "pending") + _requests(node, k, B, "pending")} == {
        app.subject(x),
        app.subject(k),
    }
