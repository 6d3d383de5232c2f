"""Protection bodies (docs/bodies.md): the police as a body, the outcome a body reads of its own requests, and
nothing of another body's."""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.api.console_references import record_reference
from ledger.app import Actor
from ledger.cli.main import main as cli
from ledger.domain.bodies import BodyOutcome
from ledger.errors import NotFoundError, PermissionDenied
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import DEFAULT_AGENCIES, SC, A, B, C, NodeFactory
from tests.integration.test_api_console import login_field
from tests.support.api import auth, client
from tests.support.staff import password_of

POL = "POL-TOKYO"  # 警視庁
SC2 = "SC-OSAKA"  # another support centre: a peer body
ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


@pytest.fixture
def bodies_node(make_node: NodeFactory, backend: str | None) -> Node:
    agencies = (
        *DEFAULT_AGENCIES,
        AgencySpec(POL, "警視庁", "police"),
        AgencySpec(SC2, "大阪府配偶者暴力相談支援センター", "support_centre"),
    )
    return make_node(agencies, database_url=backend)


def _statuses(node: Node, body: str) -> dict[UUID, str]:
    return {UUID(r["body_request_id"]): r["status"] for r in node.app.body_requests(Actor(body, "req"))}


def test_the_police_asks_and_sees_each_step_of_the_outcome(bodies_node: Node, person: Callable[[], str]) -> None:
    """Perpetrator: the police that confirmed the danger learns when the flags protect (or that they do not
    yet), instead of assuming the municipality acted."""
    app, x = bodies_node.app, person()
    bid = app.send_body_request(Actor(POL, "req"), B, x, [NAR, ND], "stalking")
    assert _statuses(bodies_node, POL) == {bid: "sent"}
    rid = app.request_flags(Actor(B, "req"), x, [NAR, ND], body_request_id=bid)
    assert _statuses(bodies_node, POL)[bid] == "requested"
    app.approve_request(Actor(B, "apr"), rid)
    assert _statuses(bodies_node, POL)[bid] == "approved"
    app.execute_request(Actor(B, "op"), rid)
    shown = app.body_request_outcome(Actor(POL, "req"), bid)
    assert shown["status"] == "executed" and shown["municipality"] == B and shown["reason"] == "stalking"
    assert [s["status"] for s in shown["outcomes"]] == ["requested", "approved", "executed"]
    assert all(s["flag_request_id"] == str(rid) and s["flags"] == sorted([NAR, ND]) for s in shown["outcomes"])
    assert shown["outcomes"][0]["on"] <= shown["outcomes"][-1]["on"]
    assert "subject" not in shown  # the outcome names no person
    inbox = app.body_inbox(Actor(B, "req"))
    assert [(r["body_request_id"], r["body"], r["status"]) for r in inbox] == [(str(bid), POL, "executed")]


def test_a_rejection_reaches_the_body(bodies_node: Node, person: Callable[[], str]) -> None:
    """Perpetrator: a body told nothing after a rejection would leave the victim believing she is protected."""
    app, x = bodies_node.app, person()
    bid = app.send_body_request(Actor(SC, "req"), B, x, [NAR])
    rid = app.request_flags(Actor(B, "req"), x, [NAR], body_request_id=bid)
    app.reject_request(Actor(B, "apr"), rid, "本人の意向を確認できない")
    shown = app.body_request_outcome(Actor(SC, "req"), bid)
    assert shown["status"] == "rejected" and [s["status"] for s in shown["outcomes"]] == ["requested", "rejected"]
    assert "本人" not in str(shown)  # the rejection's words stay at the municipality


def test_a_body_never_sees_another_bodys_requests(bodies_node: Node, person: Callable[[], str]) -> None:
    """Peer agency: one body reads nothing of another body's requests, and a municipality's inbox holds only
    the requests sent to it."""
    app = bodies_node.app
    mine = app.send_body_request(Actor(SC, "req"), B, person(), [NAR])
    theirs = app.send_body_request(Actor(POL, "req"), C, person(), [ND])
    assert set(_statuses(bodies_node, SC)) == {mine}
    assert set(_statuses(bodies_node, POL)) == {theirs}
    assert _statuses(bodies_node, SC2) == {}
    with pytest.raises(NotFoundError):
        app.body_request_outcome(Actor(SC, "req"), theirs)
    with pytest.raises(NotFoundError):
        app.body_request_outcome(Actor(SC2, "req"), mine)
    assert [r["body_request_id"] for r in app.body_inbox(Actor(B, "req"))] == [str(mine)]
    assert [r["body_request_id"] for r in app.body_inbox(Actor(A, "req"))] == []
    with pytest.raises(PermissionDenied):  # a municipality is no body: it has an inbox, not an outbox
        app.body_requests(Actor(B, "req"))


def test_an_outcome_from_a_municipality_not_asked_does_not_count(bodies_node: Node, person: Callable[[], str]) -> None:
    """Peer agency: C writes an "executed" outcome for a request sent to B; the body still reads "sent"."""
    app = bodies_node.app
    bid = app.send_body_request(Actor(SC, "req"), B, person(), [NAR])
    forged = BodyOutcome(
        agency=C,
        body=SC,
        body_request_id=bid,
        flag_request_id=bid,
        kind="set",
        flags=[NAR],
        status="executed",
        on="2026-01-01T00:00:00+00:00",
    )
    app.save_as(C, forged)
    shown = app.body_request_outcome(Actor(SC, "req"), bid)
    assert shown["status"] == "sent" and shown["outcomes"] == []


def test_the_police_holds_no_flag_and_makes_no_query(bodies_node: Node, person: Callable[[], str]) -> None:
    """Insider / administrator: whatever the permission table says (requesters may request_flag by default),
    the police sets no flag and queries nobody through the linkage (it is no 情報照会者); it only asks."""
    app, x = bodies_node.app, person()
    app.grant_permission(Actor(POL, "admin"), "requester", "request_provision")
    before = app.max_position()
    with pytest.raises(PermissionDenied) as refused:
        app.request_flags(Actor(POL, "req"), x, [ND])
    assert refused.value.code == "kind_not_permitted"
    with pytest.raises(PermissionDenied) as refused:
        app.request_provision(Actor(POL, "req"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    assert refused.value.code == "kind_not_permitted"
    with pytest.raises(PermissionDenied) as refused:  # relayed from another node: the querier is known here
        app.receive_query(POL, A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    assert refused.value.code == "kind_not_permitted"
    assert app.max_position() == before
    with pytest.raises(PermissionDenied):  # a municipality sends no protection-body request
        app.send_body_request(Actor(B, "req"), A, x, [ND])


def test_the_outcome_over_http_and_the_command_line(
    make_node: NodeFactory, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Peer agency over the API and the CLI: the police reads its own request's outcome; another body gets
    404 / exit 3 for it, exactly as for an unknown id; the municipality's inbox lists it."""
    node = make_node((*DEFAULT_AGENCIES, AgencySpec(POL, "警視庁", "police")))
    http, x = client(node), person()
    police, centre = auth(node, POL, "req"), auth(node, SC, "req")
    sent = http.post(
        "/api/v1/body-requests",
        json={"municipality": B, "subject": x, "flags": [NAR], "reason": "stalking"},
        headers=police,
    )
    assert sent.status_code == 201, sent.text
    bid = sent.json()["body_request_id"]
    rid = node.app.request_flags(Actor(B, "req"), x, [NAR], body_request_id=UUID(bid))
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    mine = http.get("/api/v1/body-requests", headers=police).json()
    assert [(r["body_request_id"], r["status"]) for r in mine] == [(bid, "executed")]
    assert http.get(f"/api/v1/body-requests/{bid}", headers=police).json()["outcomes"][-1]["status"] == "executed"
    assert http.get(f"/api/v1/body-requests/{bid}", headers=centre).status_code == 404
    assert http.get("/api/v1/body-requests", headers=centre).json() == []
    inbox = http.get("/api/v1/body-inbox", headers=auth(node, B, "req")).json()
    assert [(r["body_request_id"], r["body"]) for r in inbox] == [(bid, POL)]
    d = str(node.config.data_dir)
    capsys.readouterr()
    assert cli(["--data-dir", d, "body", "show", "--as", f"{POL}/req", bid]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "executed"
    assert cli(["--data-dir", d, "body", "list", "--as", f"{POL}/req"]) == 0
    assert [json.loads(line)["body_request_id"] for line in capsys.readouterr().out.splitlines()] == [bid]
    assert cli(["--data-dir", d, "body", "show", "--as", f"{SC}/req", bid]) == 3
    assert bid not in capsys.readouterr().out
    assert cli(["--data-dir", d, "body", "inbox", "--as", f"{B}/req"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "executed"


def _console(node: Node, agency: str, staff: str) -> TestClient:
    http = client(node)
    data = {"agency": agency, "staff": staff, "password": password_of(agency, staff), "csrf": login_field(http)}
    assert http.post("/console/login", data=data, follow_redirects=False).status_code == 303
    return http


def test_the_console_page_shows_a_body_its_own_requests_and_a_municipality_its_inbox(
    bodies_node: Node, person: Callable[[], str]
) -> None:
    """Peer agency in the console: the police's page shows its request's outcome by the municipality's name;
    another body's page shows none of it; the municipality's page names the police."""
    app, x = bodies_node.app, person()
    bid = app.send_body_request(Actor(POL, "req"), B, x, [NAR])
    rid = app.request_flags(Actor(B, "req"), x, [NAR], body_request_id=bid)
    app.reject_request(Actor(B, "apr"), rid, "<script>本人の意向</script>")
    police = _console(bodies_node, POL, "req").get("/console/body-requests")
    assert police.status_code == 200 and "B市" in police.text and "却下" in police.text
    assert "自動応答不可" in police.text and "<script>" not in police.text and "本人の意向" not in police.text
    other = _console(bodies_node, SC2, "req").get("/console/body-requests")
    assert other.status_code == 200 and "依頼はありません" in other.text and "B市" not in other.text
    inbox = _console(bodies_node, B, "req").get("/console/body-requests")
    assert inbox.status_code == 200 and "警視庁" in inbox.text and "却下" in inbox.text
    assert _console(bodies_node, B, "counter").get("/console/body-requests").status_code == 403


def test_the_municipality_shows_each_person_by_its_own_number_and_answers_a_request_from_the_page(
    bodies_node: Node, person: Callable[[], str]
) -> None:
    """Peer agency and perpetrator. The municipality's page names each person by its own 宛名番号 (a link to
    register one when it has none), never by pseudonym or number, and the police's page names nobody; the
    municipality answers a request from the page with a flag request for exactly what the police asked (the
    body request named, signed by the requester's own key), so the police reads ``requested``; a forged form or
    another municipality's staff record nothing; once answered, the page offers no second request."""
    from tests.integration.test_api_console import signed_in

    node, app = bodies_node, bodies_node.app
    x, z = person(), person()
    bid = app.send_body_request(Actor(POL, "req"), B, x, [NAR, ND], "stalking")
    other = app.send_body_request(Actor(POL, "req"), B, z, [ND], "dv")
    record_reference(node, Actor(B, "req"), x, "B-7001")
    req, csrf = signed_in(node, B, "req")
    page = req.get("/console/body-requests").text
    assert "B-7001" in page and '<a href="/console/references">宛名番号未登録' in page, "X by B's number; Z unnumbered"
    assert page.count("依頼どおり申請する") == 2
    for secret in (x, z, app.subject(x), app.subject(z)):
        assert secret not in page, "no number or pseudonym on the page"
    police = _console(node, POL, "req").get("/console/body-requests").text
    assert "B-7001" not in police and "依頼どおり申請する" not in police and app.subject(x) not in police

    url = f"/console/body-requests/{bid}/request"
    creq, ccsrf = signed_in(node, C, "req")
    start = app.max_position()
    assert req.post(url, data={"csrf": "0" * 64}, follow_redirects=False).status_code == 403
    assert creq.post(url, data={"csrf": ccsrf}, follow_redirects=False).status_code == 404, "sent to B, not C"
    assert app.max_position() == start and _statuses(node, POL)[bid] == "sent"
    done = req.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/body-requests?done=requested"
    assert _statuses(node, POL) == {bid: "requested", other: "sent"}
    (outcome,) = app.body_request_outcome(Actor(POL, "req"), bid)["outcomes"]
    made = app.flag_request(UUID(outcome["flag_request_id"]))
    assert (made.subject, made.flags, made.reason, made.body_request_id, made.requested_by) == (
        app.subject(x),
        sorted([NAR, ND]),
        "stalking",
        bid,
        "req",
    )
    assert made.acts[0]["staff"] == "req" and made.acts[0]["key_id"], "signed by the requester's own key"
    row = req.get("/console/body-requests").text
    assert row.count("依頼どおり申請する") == 1 and "決裁中" in row, "answered once; the other still offered"
    app.approve_request(Actor(B, "apr"), made.id)
    app.execute_request(Actor(B, "op"), made.id)
    assert _statuses(node, POL)[bid] == "executed"


def test_a_requester_with_a_security_key_answers_a_body_request_only_with_its_assertion(
    make_node: NodeFactory, person: Callable[[], str]
) -> None:
    """Administrator / shell user (four eyes are two people): for a requester with a certified security key the
    server never signs the answer — an unsigned post is refused and records nothing; the signed one carries
    the key's assertion over the request it names, and the request verifies as a peer checks it."""
    from ledger.audit.verify import verify_log
    from tests.integration.test_console_webauthn_acts import signed_form, with_key
    from tests.support.soft_authenticator import SoftAuthenticator

    node = make_node((*DEFAULT_AGENCIES, AgencySpec(POL, "警視庁", "police")))
    app, x = node.app, person()
    key = SoftAuthenticator()
    req, csrf = with_key(node, "req", key)
    bid = app.send_body_request(Actor(POL, "req"), B, x, [ND], "dv")
    assert "data-sign-act" in req.get("/console/body-requests").text
    url = f"/console/body-requests/{bid}/request"
    start = app.max_position()
    assert req.post(url, data={"csrf": csrf}, follow_redirects=False).status_code == 403
    assert app.max_position() == start and _statuses(node, POL)[bid] == "sent"
    assert signed_form(req, key, url, {"csrf": csrf}).status_code == 303
    assert _statuses(node, POL)[bid] == "requested"
    (outcome,) = app.body_request_outcome(Actor(POL, "req"), bid)["outcomes"]
    made = app.flag_request(UUID(outcome["flag_request_id"]))
    assert {"authenticator_data", "client_data"} <= made.acts[0].keys(), "the requester's own key's assertion"
    app.approve_request(Actor(B, "apr"), made.id)
    app.execute_request(Actor(B, "op"), made.id)
    assert _statuses(node, POL)[bid] == "executed" and verify_log(app, workers=1).staff_findings == []
