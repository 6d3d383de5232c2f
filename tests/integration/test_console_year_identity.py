"""The console's pages for the year's work (issue #21) over HTTP: the year queue (handovers, overdue), number
changes (four eyes), proxies, probe notices — each behind the session, its CSRF field and its role, each naming
persons by the agency's 宛名番号 and agencies by name (never a pseudonym or a number)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from ledger import clock
from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.integration.test_api_console import signed_in
from tests.integration.test_probe_notices import ask, protect

FORGED = "0" * 64


def test_the_year_page_lists_a_handover_to_take_over_by_the_agency_number(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: administrator/staff at the new municipality — a handover nobody sees leaves the person answerable
    there; the page shows it, naming the person by C's own number, and never says who protects them (B)."""
    node, x = sqlite_node, person()
    protect(node, B, x, ["NON_DISCLOSURE"])
    node.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=date(2026, 12, 1))
    http, csrf = signed_in(node, C, "req")
    http.post("/console/references", data={"subject": x, "reference": "C-77", "csrf": csrf})
    page = http.get("/console/year")
    assert page.status_code == 200 and 'id="handovers"' in page.text and "C-77" in page.text
    assert "不開示" in page.text and "2026-12-01" in page.text
    assert node.app.subject(x) not in page.text and x not in page.text and "B市" not in page.text
    counter, _ = signed_in(node, C, "counter")
    assert counter.get("/console/year").status_code == 403, "counter staff have no part in protection decisions"


def test_a_number_change_needs_a_second_person_through_the_pages(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: insider joining a stranger's number onto a protected person's — the requester cannot approve their
    own request, a forged form does nothing, and counter staff cannot ask; a number typed into the reason is not
    shown back (shoulder-surfing insider)."""
    node, old, new = sqlite_node, person(), person()
    req, csrf = signed_in(node, C, "req")
    form = {"old": old, "new": new, "reason": f"個人番号変更通知（旧 {old}）", "csrf": csrf}
    assert req.post("/console/number-changes", data={**form, "csrf": FORGED}).status_code == 403
    r = req.post("/console/number-changes", data=form, follow_redirects=False)
    assert r.status_code == 303
    (pending,) = node.app.pending_link_requests(Actor(C, "apr"))
    page = req.get("/console/number-changes").text
    assert "番号変更の紐付け" in page and "宛名番号未登録" in page and old not in page and pending["old"] not in page
    assert f"/number-changes/{pending['request_id']}/approve" not in page, "no approve button for the requester"
    assert req.post(f"/console/number-changes/{pending['request_id']}/approve", data={"csrf": csrf}).status_code == 403
    apr, apr_csrf = signed_in(node, C, "apr")
    action = f"/console/number-changes/{pending['request_id']}/approve"
    assert apr.post(action, data={"csrf": FORGED}).status_code == 403
    assert node.state.linked(node.app.subject(old)) is None, "nothing linked by a forged form"
    r = apr.post(action, data={"csrf": apr_csrf}, follow_redirects=False)
    assert r.status_code == 303 and node.app.pending_link_requests(Actor(C, "apr")) == []
    assert node.state.linked(node.app.subject(old)) is not None
    counter, counter_csrf = signed_in(node, C, "counter")
    assert counter.post("/console/number-changes", data={**form, "csrf": counter_csrf}).status_code == 403


def test_proxies_are_registered_and_cancelled_by_requesters_only(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: insider without the requester role (or another site's form) registering a perpetrator as the
    victim's proxy."""
    node, x, y = sqlite_node, person(), person()
    req, csrf = signed_in(node, B, "req")
    assert req.get("/console/proxies").status_code == 200
    data = {"subject": x, "proxy": y, "csrf": csrf}
    assert req.post("/console/proxies/register", data={**data, "csrf": FORGED}).status_code == 403
    assert node.app.find_proxy_registration(x, y) is None
    r = req.post("/console/proxies/register", data=data)
    assert r.status_code == 200 and "代理人を登録しました" in r.text
    reg = node.app.find_proxy_registration(x, y)
    assert reg is not None and reg.active
    clerk, clerk_csrf = signed_in(node, B, "counter")
    assert clerk.post("/console/proxies/cancel", data={**data, "csrf": clerk_csrf}).status_code == 403
    r = req.post("/console/proxies/cancel", data={**data, "reason": "本人の申出"})
    assert r.status_code == 200 and "取り消しました" in r.text
    reg = node.app.find_proxy_registration(x, y)
    assert reg is not None and not reg.active


def test_probe_notices_name_the_querier_by_name_for_deciders_only(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: perpetrator searching through a querying agency — the protecting agency's deciders see who asked;
    counter staff (who would learn the querier) do not."""
    node, x = sqlite_node, person()
    protect(node, B, x, ["NO_AUTO_RESPONSE"])
    held = ask(node, A, B, x)
    rev, _ = signed_in(node, B, "rev")
    page = rev.get("/console/probes").text
    assert held.request_id in page and "A市" in page and "児童手当" in page
    assert node.app.subject(x) not in page and x not in page and f"<td>{A}</td>" not in page
    counter, _ = signed_in(node, B, "counter")
    assert counter.get("/console/probes").status_code == 403


def test_the_year_page_shows_deciders_a_held_request_past_its_due_date(
    sqlite_node: Node, person: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threat: administrator/staff letting a held request lapse unnoticed while the perpetrator waits — past its
    due date it is on the deciders' year page (no person, no querier named there); requesters see no such list."""
    node, x = sqlite_node, person()
    protect(node, B, x, ["NO_AUTO_RESPONSE"])
    held = ask(node, A, B, x)
    apr, _ = signed_in(node, B, "apr")
    assert "回答期限を過ぎた照会はありません" in apr.get("/console/year").text
    monkeypatch.setenv(clock.ENV, str(30 * 86400))  # a month on: the request is long past its due date
    apr, _ = signed_in(node, B, "apr")
    page = apr.get("/console/year").text
    assert 'id="overdue"' in page and "次の処理で督促" in page, "overdue before the node's loop escalated it"
    assert run_batches(node.app, clock.now())["escalated"] == [held.request_id]
    page = apr.get("/console/year").text
    assert 'id="overdue"' in page and "承認者" in page and "次の処理で督促" not in page
    assert held.request_id not in page and "A市" not in page and node.app.subject(x) not in page
    req, _ = signed_in(node, B, "req")
    assert "回答期限を過ぎた" not in req.get("/console/year").text
