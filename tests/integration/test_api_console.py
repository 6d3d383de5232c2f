"""The staff console's pages over HTTP (no browser): sign-in cookie, CSRF, banner, queues, refusals.
The counter banner runs on SQLite and PostgreSQL (the ``node`` fixture), the rest on SQLite.
The same flows in real Chromium are in tests/e2e/test_console_browser.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from uuid import UUID

from fastapi.testclient import TestClient

from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.integration.test_api_commands import NAR, ND, Api
from tests.support.answers import release_decided
from tests.support.api import access_reads, client
from tests.support.staff import password_of


def login_field(http: TestClient) -> str:
    """Open the sign-in form (which sets its pre-sign-in cookie) and read its CSRF field."""
    form = http.get("/console/login")
    field = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
    assert form.status_code == 200 and field is not None and "flagledger_login=" in form.headers["set-cookie"]
    return field.group(1)


def signed_in(node: Node, agency: str, staff: str) -> tuple[TestClient, str]:
    http = client(node)
    data = {"agency": agency, "staff": staff, "password": password_of(agency, staff), "csrf": login_field(http)}
    r = http.post("/console/login", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    home = http.get("/console/")
    name = node.app.agency(agency).name  # agency names, never codes, on the pages (issue 21)
    assert home.status_code == 200 and f"{name} / {staff}" in home.text and f"{name}の業務一覧" in home.text
    csrf = re.search(r'<meta name="csrf" content="([0-9a-f]{64})">', home.text)
    assert csrf is not None
    return http, csrf.group(1)


def test_sign_in_needs_a_valid_token_and_pages_need_a_session(sqlite_node: Node) -> None:
    http = client(sqlite_node)
    r = http.get("/console/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    wrong = {"agency": B, "staff": "apr", "password": "not-apr's-password", "csrf": login_field(http)}
    r = http.post("/console/login", data=wrong)
    assert (
        r.status_code == 401
        and "サインインできません" in r.text
        and "flagledger_session" not in r.headers["set-cookie"]
    )
    http, csrf = signed_in(sqlite_node, B, "apr")
    r = http.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and 'flagledger_session=""' in r.headers["set-cookie"]


def test_another_site_can_neither_sign_a_browser_in_nor_sign_it_out(sqlite_node: Node) -> None:
    """Threat: the perpetrator (or anyone) running a web page a clerk opens. Without the sign-in form's field,
    a cross-site POST cannot plant a session of the attacker's choosing in the clerk's browser (login CSRF), and
    without the session's field it cannot end the clerk's session."""
    node = sqlite_node
    http = client(node)
    valid = {"agency": B, "staff": "apr", "password": password_of(B, "apr")}
    r = http.post("/console/login", data=valid, follow_redirects=False)  # no form opened, no field
    assert r.status_code == 403 and "flagledger_session" not in r.headers.get("set-cookie", "")
    login_field(http)  # the cookie is there now, but the attacker cannot know the field derived from it
    r = http.post("/console/login", data={**valid, "csrf": "0" * 64}, follow_redirects=False)
    assert r.status_code == 403 and "flagledger_session" not in r.headers.get("set-cookie", "")
    http, csrf = signed_in(node, B, "apr")
    r = http.post("/console/logout", data={"csrf": "0" * 64}, follow_redirects=False)
    assert r.status_code == 403 and "flagledger_session" not in r.headers.get("set-cookie", "")
    assert http.get("/console/", follow_redirects=False).status_code == 200, "the session is still there"
    r = http.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and 'flagledger_session=""' in r.headers["set-cookie"]


def test_counter_banner_at_another_agency_and_no_banner_for_others(node: Node, person: Callable[[], str]) -> None:
    x, y = person(), person()
    Api(node).protect(B, x, [ND, NAR])
    http, csrf = signed_in(node, A, "counter")
    page = http.post("/console/counter", data={"subject": x, "csrf": csrf})
    assert page.status_code == 200 and "保護対象者です" in page.text and "不開示" in page.text
    assert B not in page.text and "B市" not in page.text, "staff of another agency never see which agency protects"
    page = http.post("/console/counter", data={"subject": y, "csrf": csrf})
    assert "保護フラグの登録はありません" in page.text and "保護対象者です" not in page.text
    stale = http.post("/console/counter", data={"subject": x, "csrf": "0" * 64})
    assert stale.status_code == 403 and "csrf" in stale.text and "保護対象者です" not in stale.text
    missing = http.post("/console/counter", data={"subject": x})
    assert missing.status_code == 422 and "入力内容に誤りがあります" in missing.text and x not in missing.text
    http, _ = signed_in(node, A, "req")
    assert http.get("/console/counter").status_code == 403
    assert "窓口照会" not in http.get("/console/").text, "no counter entry for staff without counter_lookup"


def test_approve_execute_and_decide_a_held_request_through_forms(sqlite_node: Node, person: Callable[[], str]) -> None:
    api, x = Api(sqlite_node), person()
    rid = api.post(f"{B}/req", "/flag-requests", {"subject": x, "flags": [NAR]}, 201)["request_id"]
    http, csrf = signed_in(sqlite_node, B, "apr")
    assert rid in http.get("/console/approvals").text
    r = http.post(f"/console/approvals/{rid}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and sqlite_node.app.flag_request(UUID(rid)).status == "approved"
    again = http.post(f"/console/approvals/{rid}/approve", data={"csrf": csrf})
    assert again.status_code == 409 and "conflict" in again.text
    op, op_csrf = signed_in(sqlite_node, B, "op")
    assert op.post(f"/console/approvals/{rid}/execute", data={"csrf": op_csrf}).status_code == 200
    q = api.post(
        f"{A}/counter",
        "/provision-requests",
        {"provider": C, "subject": x, "legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"},
        201,
    )["request_id"]
    rev, rev_csrf = signed_in(sqlite_node, C, "rev")
    assert q in rev.get("/console/held").text
    r = rev.post(
        f"/console/held/{q}/propose",
        data={"csrf": rev_csrf, "decision": "refuse", "applicant_check": "known_perpetrator"},
    )
    assert r.status_code == 200 and "判断案を登録しました" in r.text
    apr, apr_csrf = signed_in(sqlite_node, C, "apr")
    version = re.search(r'name="proposal_version" value="(\d+)"', apr.get("/console/held").text)
    assert version is not None, "the approve form names the proposal shown"
    r = apr.post(f"/console/held/{q}/approve", data={"csrf": apr_csrf, "proposal_version": version.group(1)})
    assert r.status_code == 200 and "判断を確定しました" in r.text and q not in r.text
    assert api.get(f"{A}/counter", f"/provision-requests/{q}")["status"] == "in_progress", "until the batch time"
    release_decided(sqlite_node.app)
    assert api.get(f"{A}/counter", f"/provision-requests/{q}")["status"] == "not_provided"
    counter, _ = signed_in(sqlite_node, C, "counter")
    assert counter.get("/console/held").status_code == 403


def test_reviews_and_the_recorded_timeline(sqlite_node: Node, person: Callable[[], str]) -> None:
    x = person()
    api = Api(sqlite_node)
    api.post(f"{B}/req", "/cases", {"victim": x, "notes": "<script>alert(1)</script>"}, 201)
    api.protect(B, x, [ND])
    http, csrf = signed_in(sqlite_node, B, "aud")
    assert "見直し期限" in http.get("/console/reviews").text
    page = http.post("/console/timeline", data={"subject": x, "purpose": "監査", "csrf": csrf})
    assert page.status_code == 200 and "Protection.FlagsSet" in page.text
    assert "ProtectionCase" in page.text and "<script>alert" not in page.text, "recorded text is escaped"
    assert access_reads(sqlite_node) == [(B, "aud", "subject timeline")]
    clerk, clerk_csrf = signed_in(sqlite_node, B, "counter")
    assert clerk.post("/console/timeline", data={"subject": x, "purpose": "x", "csrf": clerk_csrf}).status_code == 403
    assert len(access_reads(sqlite_node)) == 1
