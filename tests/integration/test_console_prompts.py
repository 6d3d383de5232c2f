"""The year queue's prompts on a case page, signed by a security key (ledger/api/console_prompts.py): one button
opens several flag requests — NON_DISCLOSURE on each perpetrator, what an attached companion lacks — and each
request carries its own assertion over its own statement, so that it verifies at a peer and in ``audit verify``
exactly like a request made alone. A software authenticator plays the key; Chromium walks the same button in
tests/e2e/test_console_year_browser.py.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.domain.flags import FlagRequest
from ledger.log.staff_roster import check_evidence
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B, C, NodeFactory
from tests.integration.test_console_security_keys import ORIGIN
from tests.integration.test_console_webauthn_acts import signed_form, with_key
from tests.integration.test_staff_signing import deliver, pair  # noqa: F401 (pair: the fixture)
from tests.support.people import individual_number
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.trust import trust

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
PSEUDONYM = re.compile(r"p[0-9a-f]{32}")


def _answer(key: SoftAuthenticator, options: dict[str, Any]) -> str:
    """The key's assertion as webauthn.js sends it (JSON; the response's three fields)."""
    a = key.get(options, ORIGIN)
    return json.dumps(
        {**a, "response": {k: a["response"][k] for k in ("clientDataJSON", "authenticatorData", "signature")}}
    )


def _options(http: TestClient, url: str, csrf: str) -> list[dict[str, Any]]:
    r = http.post(url + "/options", data={"csrf": csrf})
    assert r.status_code == 200, r.text
    acts: list[dict[str, Any]] = r.json()["acts"]
    return acts


def _post(http: TestClient, url: str, csrf: str, signed: list[dict[str, str]]) -> Any:
    return http.post(url, data={"csrf": csrf, "assertions": json.dumps(signed)}, follow_redirects=False)


def _requests(node: Node, *subjects: str) -> list[FlagRequest]:
    wanted = {node.app.subject(s) for s in subjects}
    return [r for r in node.app._aggregates(FlagRequest, "Requested") if r.subject in wanted]


def _protect(node: Node, subject: str, flags: list[str], case: UUID | None = None, companion: bool = False) -> None:
    app = node.app
    if companion:
        assert case is not None
        rid = app.propose_companion(Actor(B, "req"), case, subject, flags=flags)
    else:
        rid = app.request_flags(Actor(B, "req"), subject, flags, case_id=case)
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)


@pytest.fixture
def pair_on(make_node: NodeFactory, tmp_path: Path, backend: str | None) -> tuple[Node, Node]:
    """B's node on each storage backend (SQLite, PostgreSQL), and peer C (SQLite) ingesting B's events."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key, database_url=backend)
    c = make_node((AgencySpec(C, "C市", "municipality"),), name="c", pseudonym_key_file=key)
    trust(b, c)
    trust(c, b)
    return b, c


def test_each_prompted_request_carries_its_own_assertion_and_verifies_at_a_peer_like_one_made_alone(
    pair_on: tuple[Node, Node],
) -> None:
    """Threat: the perpetrator (Y1, Y2 named on X's case must get NON_DISCLOSURE, so that a query about them does
    not show its querier on their portal), the administrator / shell user (four eyes are two people: the server
    never signs for a person with a security key — each of the requests one button opens carries that person's
    own assertion over that request's statement) and a peer agency (C checks each flag change as one made
    alone). A post short of one assertion, with another person's key, or with two assertions swapped between
    the requests records nothing; the signed post records one request per prompt, each of which, approved and
    executed, is applied by C and passes ``audit verify`` on both nodes, its evidence shaped like that of a
    request made alone on the flag request page."""
    b, c = pair_on
    app = b.app
    x, k, y1, y2, alone = (individual_number() for _ in range(5))
    keys = {who: SoftAuthenticator() for who in ("req", "apr")}
    req, csrf = with_key(b, "req", keys["req"])
    case = app.open_case(Actor(B, "req"), x, perpetrators=[y1, y2])
    _protect(b, x, [ND, NAR], case)
    _protect(b, k, [NAR], case, companion=True)  # K attached with NAR only: the companion prompt asks for ND

    page = req.get(f"/console/cases/{case}").text
    assert page.count("data-sign-acts") == 2 and 'name="assertions"' in page
    assert not PSEUDONYM.search(page) and not any(n in page for n in (x, k, y1, y2))
    perps = f"/console/cases/{case}/prompted/perpetrators"
    acts = _options(req, perps, csrf)
    assert len(acts) == 2 and len({a["request_id"] for a in acts}) == 2
    assert {a["person"] for a in acts} == {"宛名番号未登録"}, "persons by 宛名番号 only, never a pseudonym"
    assert not PSEUDONYM.search(json.dumps(acts)) and not any(n in json.dumps(acts) for n in (y1, y2))
    genuine = [{"request_id": a["request_id"], "assertion": _answer(keys["req"], a["publicKey"])} for a in acts]

    start = app.max_position()
    assert req.post(perps, data={"csrf": csrf}, follow_redirects=False).status_code == 403, "no assertion at all"
    assert _post(req, perps, csrf, genuine[:1]).status_code == 409, "one request left unsigned"
    swapped = [
        {**genuine[0], "request_id": genuine[1]["request_id"]},
        {**genuine[1], "request_id": acts[0]["request_id"]},
    ]
    assert _post(req, perps, csrf, swapped).status_code == 409, "an assertion names the request it signed"
    other = [{"request_id": a["request_id"], "assertion": _answer(keys["apr"], a["publicKey"])} for a in acts]
    assert _post(req, perps, csrf, other).status_code == 403, "another person's key"
    assert _post(req, perps, csrf, [*genuine, genuine[0]]).status_code == 403, "an answer signing nothing prompted"
    assert app.max_position() == start and _requests(b, y1, y2) == [], "each refusal recorded nothing"

    assert _post(req, perps, csrf, genuine).status_code == 303
    made = _requests(b, y1, y2)
    assert sorted(str(r.id) for r in made) == sorted(a["request_id"] for a in acts), "the ids the key signed"
    assert all((r.flags, r.requested_by, r.case_id) == ([ND], "req", case) for r in made)
    comps = f"/console/cases/{case}/prompted/companions"
    (kact,) = _options(req, comps, csrf)
    ksigned = {"request_id": kact["request_id"], "assertion": _answer(keys["req"], kact["publicKey"])}
    assert _post(req, comps, csrf, [ksigned]).status_code == 303
    (kreq,) = [r for r in _requests(b, k) if r.flags == [ND]]
    assert str(kreq.id) == kact["request_id"]
    queue = app.year_queue(Actor(B, "req"))
    assert [p for p in queue["perpetrators"] + queue["companions"] if p["case_id"] == str(case)] == []
    assert _options_refused(req, perps, csrf) == 409, "nothing left to prompt"
    assert _post(req, perps, csrf, genuine).status_code == 409, "a second press: nothing left, nothing recorded"
    assert len(_requests(b, y1, y2)) == 2

    # one request made alone, on the flag request page, signed by the same key: the reference shape
    form = {"csrf": csrf, "subject": alone, "flags": [ND], "kind": "set", "reason": "dv"}
    assert signed_form(req, keys["req"], "/console/requests/new", form).status_code == 303
    (single,) = _requests(b, alone)
    for r in [*made, kreq, single]:
        app.approve_request(Actor(B, "apr"), r.id)
        app.execute_request(Actor(B, "op"), r.id)
    assert deliver(b, c) == {}, "the peer applies every flag change, the prompted ones like the one made alone"
    for who in (y1, y2, k, alone):
        assert c.app.holders_anywhere(c.app.subject(who)).get(ND) == [B], "C holds B's flag on each"
    flags_set = {
        str(e.request_id): e  # type: ignore[attr-defined]
        for e in (app.signed_mapper.decode(env) for _, _, env in app.envelopes())
        if type(e).__name__.endswith("FlagsSet")
    }
    shapes = set()
    for r in [*made, kreq, single]:
        event = flags_set[str(r.id)]
        assert check_evidence(app.roster(B), "FlagsSet", vars(event)) is None
        (requested,) = [a for a in event.evidence["acts"] if a["act"] == "requested"]
        assert {"authenticator_data", "client_data"} <= requested.keys(), "the requester's own assertion"
        shapes.add(tuple(sorted(requested)))
    assert len(shapes) == 1, "a prompted request's evidence is shaped exactly like one made alone"
    for node in (b, c):
        report = verify_log(node.app, workers=1)
        assert report.ok and report.staff_findings == [] and report.before_staff_signing == [], node


def _options_refused(http: TestClient, url: str, csrf: str) -> int:
    code: int = http.post(url + "/options", data={"csrf": csrf}).status_code
    return code


def test_without_a_security_key_each_prompted_request_is_signed_by_the_unlocked_staff_key(
    pair: tuple[Node, Node],  # noqa: F811
) -> None:
    """Threat: a peer agency and the shell user. A person with no security key opens the prompted requests with
    one click; each is signed by their own staff key (unlocked by their password at sign-in), checked by C and
    by ``audit verify`` like any other; a forged CSRF field records nothing."""
    from tests.integration.test_api_console import signed_in

    b, c = pair
    app = b.app
    x, y = individual_number(), individual_number()
    req, csrf = signed_in(b, B, "req")
    case = app.open_case(Actor(B, "req"), x, perpetrators=[y])
    url = f"/console/cases/{case}/prompted/perpetrators"
    start = app.max_position()
    assert req.post(url, data={"csrf": "0" * 64}, follow_redirects=False).status_code == 403
    assert req.post(url + "/options", data={"csrf": csrf}).status_code == 403, "no key: no options to sign with"
    empty = [{"request_id": "00000000-0000-4000-8000-000000000000", "assertion": ""}]
    assert _post(req, url, csrf, empty).status_code == 422, "an empty answer is bad input, not a server error"
    assert app.max_position() == start
    assert req.post(url, data={"csrf": csrf}, follow_redirects=False).status_code == 303
    (made,) = _requests(b, y)
    assert "authenticator_data" not in made.acts[0]
    app.approve_request(Actor(B, "apr"), made.id)
    app.execute_request(Actor(B, "op"), made.id)
    assert deliver(b, c) == {}
    assert c.app.holders_anywhere(c.app.subject(y)).get(ND) == [B]
    assert verify_log(app, workers=1).staff_findings == []
