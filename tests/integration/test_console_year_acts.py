"""The console's year acts over HTTP (ledger/api/console_cases.py, console_guardians.py, console_year_acts.py):
each goes through the app's own command, signed by its person (their security key's assertion, when they have
one, else the staff key their sign-in unlocked); the forms need the session's CSRF field and the role; no page
carries a person's number or pseudonym. The walk through all of them in Chromium:
tests/e2e/test_console_year_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.domain.flags import FlagRequest
from ledger.runtime.bootstrap import Node
from tests.conftest import B, C
from tests.integration.test_api_console import signed_in
from tests.integration.test_console_webauthn_acts import signed_form, with_key
from tests.support.soft_authenticator import SoftAuthenticator

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
PSEUDONYM = re.compile(r"p[0-9a-f]{32}")


def _signatures(node: Node, suffix: str) -> list[dict[str, Any]]:
    """The staff signatures on each event whose topic ends with ``suffix``, as the log holds them."""
    out = []
    for _, _, env in node.app.envelopes():
        if env.header.topic.endswith(suffix):
            out.append(vars(node.app.signed_mapper.decode(env))["staff_signature"])
    return out


def _requests(node: Node, subject: str) -> list[FlagRequest]:
    s = node.app.subject(subject)
    return [r for r in node.app._aggregates(FlagRequest, "Requested") if r.subject == s]


def test_intake_companion_bar_and_risk_are_signed_by_each_persons_security_key(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: an administrator and a shell user. For a person with a certified key, the console never signs a
    year act with the key held in the server: the victim's and the companion's requests, a guardian bar's
    proposal and approval and a named risk's each carry that person's own assertion (an unsigned post, or one
    signed by another person's key, is refused and records nothing), and ``audit verify`` finds nothing."""
    node, app = sqlite_node, sqlite_node.app
    x, k, y = person(), person(), person()
    keys = {who: SoftAuthenticator() for who in ("req", "apr")}
    req, req_csrf = with_key(node, "req", keys["req"])
    apr, apr_csrf = with_key(node, "apr", keys["apr"])

    opened = req.post("/console/cases", data={"csrf": req_csrf, "victim": x, "perpetrator": y}, follow_redirects=False)
    assert opened.status_code == 303 and "/console/cases/" in opened.headers["location"]
    case = opened.headers["location"].split("/console/cases/")[1].split("?")[0]
    page = req.get(f"/console/cases/{case}").text
    assert page.count("data-sign-act ") + page.count("data-sign-act>") == 2 and "data-sign-acts" in page
    assert not PSEUDONYM.search(page) and x not in page

    victim = {"csrf": req_csrf, "flags": [ND, NAR]}
    unsigned = req.post(f"/console/cases/{case}/flags", data=victim, follow_redirects=False)
    assert unsigned.status_code == 403 and _requests(node, x) == [], "no assertion: refused, nothing requested"
    assert signed_form(req, keys["req"], f"/console/cases/{case}/flags", victim).status_code == 303
    companion = {"csrf": req_csrf, "companion": k, "relation": "child", "flags": [ND, NAR]}
    wrong = signed_form(req, keys["apr"], f"/console/cases/{case}/companions", companion)
    assert wrong.status_code == 403 and _requests(node, k) == [], "another person's key"
    assert signed_form(req, keys["req"], f"/console/cases/{case}/companions", companion).status_code == 303
    (kr,) = _requests(node, k)
    assert app.case(UUID(case)).companions[app.subject(k)]["request_id"] == str(kr.id)
    for rid in [r.id for r in _requests(node, x)] + [kr.id]:
        assert signed_form(apr, keys["apr"], f"/console/approvals/{rid}/approve", {"csrf": apr_csrf}).status_code == 303
        app.execute_request(Actor(B, "op"), rid)  # the operator has no key: their unlocked staff key signs
    assert app.case(UUID(case)).attached_companions == [app.subject(k)]

    prompted = req.post(f"/console/cases/{case}/prompted/perpetrators", data={"csrf": req_csrf})
    assert prompted.status_code == 403 and _requests(node, y) == [], "no assertions: the server key never signs"
    bar = {"csrf": req_csrf, "subject": k, "guardian": y, "relation": "parent"}
    assert signed_form(req, keys["req"], "/console/guardian-bars", bar).status_code == 303
    (listed,) = app.guardian_bars(Actor(B, "req"))
    approve = f"/console/guardian-bars/{listed['bar_id']}/approve"
    assert apr.post(approve, data={"csrf": apr_csrf}, follow_redirects=False).status_code == 403
    assert not app.barred(k, y)
    assert signed_form(apr, keys["apr"], approve, {"csrf": apr_csrf}).status_code == 303
    assert app.barred(k, y)

    risk = {"csrf": req_csrf, "subject": x, "flags": [ND], "risk": "転出先の確認前に解除すると所在が知られうる"}
    assert signed_form(req, keys["req"], "/console/year/risks", risk).status_code == 303
    (decision,) = app.release_risks(Actor(B, "req"))
    url = f"/console/year/risks/{decision['decision_id']}/approve"
    assert signed_form(apr, keys["apr"], url, {"csrf": apr_csrf}).status_code == 303
    assert app.release_risks(Actor(B, "apr"))[0]["approved"]

    signed = [
        *_signatures(node, "FlagRequest.Requested"),
        *_signatures(node, "GuardianBar.Proposed"),
        *_signatures(node, "GuardianBar.Approved"),
        *_signatures(node, "ReleaseDecision.Proposed"),
        *_signatures(node, "ReleaseDecision.Approved"),
    ]
    assert len(signed) == 6 and all("authenticator_data" in s for s in signed), "each act is an assertion"
    assert verify_log(app, workers=1).staff_findings == []


def test_year_forms_need_the_session_the_role_and_four_eyes(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: an administrator / shell user and another site. A form without the session's CSRF field, a
    requester approving a bar or a lapse, an administrator approving anything, or an item not in the agency's
    queue are refused, and nothing is recorded; the person who proposed never approves their own."""
    node, app = sqlite_node, sqlite_node.app
    x, y = person(), person()
    req, req_csrf = signed_in(node, B, "req")
    apr, apr_csrf = signed_in(node, B, "apr")
    admin, admin_csrf = signed_in(node, B, "admin")
    start = app.max_position()
    forged = req.post("/console/cases", data={"csrf": "0" * 64, "victim": x}, follow_redirects=False)
    assert forged.status_code == 403
    assert app.max_position() == start, "a forged form records nothing"

    rid = app.request_flags(Actor(B, "req"), x, [ND, NAR])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    bar = {"csrf": req_csrf, "subject": x, "guardian": y, "relation": "parent"}
    assert req.post("/console/guardian-bars", data=bar, follow_redirects=False).status_code == 303
    (listed,) = app.guardian_bars(Actor(B, "req"))
    before = app.max_position()
    for http, csrf in ((req, req_csrf), (admin, admin_csrf)):
        r = http.post(f"/console/guardian-bars/{listed['bar_id']}/approve", data={"csrf": csrf})
        assert r.status_code == 403
    assert app.max_position() == before and not app.barred(x, y)

    # a term: recorded, reminded by the year's step, a lapse proposed by one person and approved by another
    applied = app.clock().date() - timedelta(days=360)
    term = {"csrf": req_csrf, "subject": x, "applied_on": applied.isoformat()}
    assert req.post("/console/year/terms", data=term, follow_redirects=False).status_code == 303
    app.year_step(B)
    (item,) = app.year_queue(Actor(B, "req"))["terms"]
    lapse = f"/console/year/terms/{item['term_id']}/lapse"
    assert req.post(lapse, data={"csrf": req_csrf, "note": "本人の希望"}, follow_redirects=False).status_code == 303
    r = req.post(lapse + "-approve", data={"csrf": req_csrf}, follow_redirects=False)
    assert r.status_code == 403, "a requester does not approve a lapse"
    r = apr.post(lapse + "-approve", data={"csrf": apr_csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=lapse_approved")
    assert not app.term(B, x).open
    assert app.holders_anywhere(app.subject(x)) == {ND: [B], NAR: [B]}, "an approved lapse lifts no flag"

    # C may take over only what C's queue shows: a move id of B's own recording that is not to C is refused
    app.record_move(Actor(B, "req"), x, to_agency=C, moved_on=app.clock().date())
    move = app.latest_move(app.subject(x))
    assert move is not None
    before = app.max_position()
    r = req.post(f"/console/year/handovers/{move.id}", data={"csrf": req_csrf}, follow_redirects=False)
    assert r.status_code == 404 and app.max_position() == before, "B is not the receiving municipality"
    creq, creq_csrf = signed_in(node, C, "req")
    page = creq.get("/console/year").text
    assert f"/console/year/handovers/{move.id}" in page and not PSEUDONYM.search(page) and x not in page
    r = creq.post(f"/console/year/handovers/{move.id}", data={"csrf": creq_csrf}, follow_redirects=False)
    assert r.status_code == 303
    (taken,) = [r for r in _requests(node, x) if r.agency == C]
    assert (taken.flags, taken.requested_by, taken.status) == ([ND, NAR], "req", "pending")
    # the year queue's prompts on a case, acted on from the case page: Y's NON_DISCLOSURE, K's missing flag
    k = person()
    case = app.open_case(Actor(B, "req"), x, perpetrators=[y])
    kid = app.propose_companion(Actor(B, "req"), case, k, flags=[NAR])
    app.approve_request(Actor(B, "apr"), kid)
    app.execute_request(Actor(B, "op"), kid)
    page = req.get(f"/console/cases/{case}").text
    assert "不開示を申請する" in page and "不足分を申請する" in page
    for which in ("perpetrators", "companions"):
        r = req.post(f"/console/cases/{case}/prompted/{which}", data={"csrf": req_csrf}, follow_redirects=False)
        assert r.status_code == 303
    assert [(r.flags, r.status, r.requested_by) for r in _requests(node, y)] == [([ND], "pending", "req")]
    assert [(r.flags, r.status) for r in _requests(node, k) if r.id != kid] == [([ND], "pending")]
    assert app.year_queue(Actor(B, "req"))["perpetrators"] == [] == app.year_queue(Actor(B, "req"))["companions"]
    for path in ("/console/cases", f"/console/cases/{case}", "/console/guardian-bars", "/console/year"):
        shown = req.get(path).text
        assert not PSEUDONYM.search(shown) and x not in shown and y not in shown, path
