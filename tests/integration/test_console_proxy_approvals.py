"""The console's page of a holder's proxy approvals (ledger/api/console_proxy_approvals.py, issue 19): each act
goes through the app's own command, signed by its person — their security key's assertion when they have one,
else the staff key their sign-in unlocked; the forms need the session's CSRF field and the role; the page carries
no number or pseudonym.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.integration.test_api_console import signed_in
from tests.integration.test_console_webauthn_acts import signed_form, with_key
from tests.support.soft_authenticator import SoftAuthenticator

PSEUDONYM = re.compile(r"p[0-9a-f]{32}")


def test_two_people_approve_and_withdraw_a_proxy_in_the_console(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: the perpetrator as proxy let in by one person, an administrator alone, a forged form. B protects
    X; the requester proposes P (a forged CSRF records nothing), the requester and an administrator cannot approve
    it (403), the approver does; a withdrawal takes two people as well. No page shows a number or pseudonym."""
    node, app = sqlite_node, sqlite_node.app
    x, p = person(), person()
    rid = app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    req, req_csrf = signed_in(node, B, "req")
    apr, apr_csrf = signed_in(node, B, "apr")
    admin, admin_csrf = signed_in(node, B, "admin")

    start = app.max_position()
    form = {"csrf": "0" * 64, "subject": x, "proxy": p}
    assert req.post("/console/proxy-approvals", data=form, follow_redirects=False).status_code == 403
    assert app.max_position() == start, "a forged form records nothing"
    form["csrf"] = req_csrf
    assert req.post("/console/proxy-approvals", data=form, follow_redirects=False).status_code == 303
    (listed,) = app.proxy_approvals(Actor(B, "req"))
    assert listed["in_force"] is False
    approve = f"/console/proxy-approvals/{listed['approval_id']}/approve"
    before = app.max_position()
    for http, csrf in ((req, req_csrf), (admin, admin_csrf)):
        assert http.post(approve, data={"csrf": csrf}, follow_redirects=False).status_code == 403
    assert app.max_position() == before
    assert apr.post(approve, data={"csrf": apr_csrf}, follow_redirects=False).status_code == 303
    assert app.proxy_approvals(Actor(B, "apr"))[0]["in_force"] is True

    page = apr.get("/console/proxy-approvals").text
    assert "有効" in page and not PSEUDONYM.search(page) and x not in page and p not in page
    withdraw = f"/console/proxy-approvals/{listed['approval_id']}/withdraw"
    note = {"csrf": req_csrf, "note": "本人が同意を撤回"}
    assert req.post(withdraw, data=note, follow_redirects=False).status_code == 303
    assert req.post(withdraw + "-approve", data={"csrf": req_csrf}, follow_redirects=False).status_code == 403
    assert apr.post(withdraw + "-approve", data={"csrf": apr_csrf}, follow_redirects=False).status_code == 303
    assert app.proxy_approvals(Actor(B, "apr")) == []


def test_a_person_with_a_security_key_signs_with_it(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: an administrator or shell user signing for the approver with the key held in the server: once the
    approver's security key is certified, an approval sent without its assertion is refused, with it taken."""
    node, app = sqlite_node, sqlite_node.app
    x, p = person(), person()
    rid = app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    keys = {who: SoftAuthenticator() for who in ("req", "apr")}
    (req, req_csrf), (apr, apr_csrf) = (with_key(node, who, keys[who]) for who in ("req", "apr"))
    form = {"csrf": req_csrf, "subject": x, "proxy": p}
    assert signed_form(req, keys["req"], "/console/proxy-approvals", form).status_code == 303
    (listed,) = app.proxy_approvals(Actor(B, "req"))
    approve = f"/console/proxy-approvals/{listed['approval_id']}/approve"
    assert apr.post(approve, data={"csrf": apr_csrf}, follow_redirects=False).status_code == 403
    assert app.proxy_approvals(Actor(B, "apr"))[0]["in_force"] is False
    assert signed_form(apr, keys["apr"], approve, {"csrf": apr_csrf}).status_code == 303
    assert app.proxy_approvals(Actor(B, "apr"))[0]["in_force"] is True
