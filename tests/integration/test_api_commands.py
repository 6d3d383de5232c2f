"""HTTP API commands against a real node: the workflows end to end, and every refusal's status and code.

The workflow story runs on SQLite and PostgreSQL (the ``node`` fixture); the refusals on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.conftest import SC, A, B
from tests.support.answers import release_decided
from tests.support.api import auth, client, system_auth
from tests.support.staff import grant_approved

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


class Api:
    """One client, tokens per (agency, staff) issued on first use."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.http: TestClient = client(node)
        self._auth: dict[tuple[str, str], dict[str, str]] = {}

    def h(self, who: str) -> dict[str, str]:
        agency, staff = who.split("/")
        if (agency, staff) not in self._auth:
            # "AGENCY/portal": the agency's portal system account, signed in with its own secret
            self._auth[agency, staff] = (
                system_auth(self.node, agency) if staff == "portal" else auth(self.node, agency, staff)
            )
        return self._auth[agency, staff]

    def post(self, who: str, path: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        r = self.http.post("/api/v1" + path, json=body if body is not None else {}, headers=self.h(who))
        assert r.status_code == status, (r.status_code, r.text)
        return r.json()

    def get(self, who: str, path: str, status: int = 200) -> Any:
        r = self.http.get("/api/v1" + path, headers=self.h(who))
        assert r.status_code == status, (r.status_code, r.text)
        return r.json()

    def protect(self, agency: str, subject: str, flags: list[str]) -> str:
        rid: str = self.post(f"{agency}/req", "/flag-requests", {"subject": subject, "flags": flags}, 201)["request_id"]
        assert self.post(f"{agency}/apr", f"/flag-requests/{rid}/approve", {"note": "ok"})["status"] == "approved"
        assert self.post(f"{agency}/op", f"/flag-requests/{rid}/execute")["status"] == "executed"
        return rid


@pytest.fixture
def api(sqlite_node: Node) -> Api:
    return Api(sqlite_node)


def test_the_whole_workflow_over_http(node: Node, person: Callable[[], str]) -> None:
    api, x, perp = Api(node), person(), person()
    case = api.post(
        f"{B}/req",
        "/cases",
        {
            "victim": x,
            "perpetrators": [perp],
            "reason": "dv",
            "checklist": ["flag_restrictions_explained"],
            "notes": "相談",
        },
        201,
    )
    rid = api.post(
        f"{B}/req",
        "/flag-requests",
        {
            "subject": x,
            "flags": [ND, NAR],
            "case_id": case["case_id"],
            "review_date": str(date.today() + timedelta(days=90)),
        },
        201,
    )
    got = api.get(f"{B}/apr", f"/flag-requests/{rid['request_id']}")
    assert got["status"] == "pending" and got["flags"] == [ND, NAR] and got["subject"] == node.app.subject(x)
    assert api.post(f"{B}/apr", f"/flag-requests/{rid['request_id']}/approve", {})["status"] == "approved"
    executed = api.post(f"{B}/op", f"/flag-requests/{rid['request_id']}/execute")
    assert executed == {"request_id": rid["request_id"], "status": "executed", "kind": "set", "flags": [ND, NAR]}
    assert [f["flag"] for f in api.post(f"{B}/apr", "/queries/agency-flags", {"subject": x})] == [ND, NAR]

    # a query from A to provider C about x is held (NO_AUTO_RESPONSE), and looks like any manual answer
    ask = {"provider": "131032", "subject": x, "legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"}
    asked = api.post(f"{A}/counter", "/provision-requests", ask, 201)
    assert asked["status"] == "in_progress"
    held = api.get("131032/rev", "/queue")["held"]
    assert [h["request_id"] for h in held] == [asked["request_id"]]
    api.post(
        "131032/rev",
        f"/provision-requests/{asked['request_id']}/propose",
        {"decision": "refuse", "applicant_check": "known_perpetrator", "note": "加害者からの照会"},
    )
    (shown,) = api.get("131032/apr", "/queue")["held"]
    assert shown["proposal"] == "refuse" and shown["proposal_version"] >= 3
    assert (
        api.post(
            "131032/apr",
            f"/provision-requests/{asked['request_id']}/approve",
            {"proposal_version": shown["proposal_version"]},
        )["status"]
        == "refused"
    )
    release_decided(node.app)  # staff-made answers reach the querier at the provider's batch time
    assert api.get(f"{A}/counter", f"/provision-requests/{asked['request_id']}")["status"] == "not_provided"
    assert api.get("131032/rev", "/queue")["held"] == []

    # renew, then release with the explanation given to the person
    ren = api.post(f"{B}/req", "/flag-requests", {"subject": x, "flags": [ND], "kind": "renew"}, 201)["request_id"]
    api.post(f"{B}/apr", f"/flag-requests/{ren}/approve")
    assert api.post(f"{B}/op", f"/flag-requests/{ren}/execute")["kind"] == "renew"
    rel = api.post(
        f"{B}/req",
        "/flag-requests",
        {"subject": x, "flags": [ND, NAR], "kind": "release", "explanation": "説明済み"},
        201,
    )["request_id"]
    assert api.post(f"{B}/apr", f"/flag-requests/{rel}/approve")["status"] == "pending"  # the last holder
    api.post(f"{B}/apr2", f"/flag-requests/{rel}/approve")
    api.post(f"{B}/op", f"/flag-requests/{rel}/execute")
    state = api.post(f"{B}/apr", "/queries/agency-flags", {"subject": x})
    assert [(f["active"], [h["action"] for h in f["history"]]) for f in state] == [
        (False, ["set", "renew", "release"]),
        (False, ["set", "release"]),
    ]


def test_reject_and_body_requests(api: Api, person: Callable[[], str]) -> None:
    x = person()
    body = api.post(f"{SC}/req", "/body-requests", {"municipality": B, "subject": x, "flags": [ND]}, 201)
    queued = api.get(f"{B}/req", "/queue")["body_requests"]
    assert [q["body_request_id"] for q in queued] == [body["body_request_id"]] and queued[0]["decided"] is False
    rid = api.post(
        f"{B}/req", "/flag-requests", {"subject": x, "flags": [ND], "body_request_id": body["body_request_id"]}, 201
    )["request_id"]
    assert api.post(f"{B}/apr", f"/flag-requests/{rid}/reject", {"reason": "要件不足"})["status"] == "rejected"
    assert api.get(f"{B}/req", "/queue")["body_requests"][0]["outcome"] == "rejected"
    assert api.post(f"{B}/apr", f"/flag-requests/{rid}/approve", status=409)["code"] == "conflict"


def test_an_unprotected_query_is_answered_automatically(api: Api, person: Callable[[], str]) -> None:
    asked = api.post(
        f"{A}/counter",
        "/provision-requests",
        {"provider": B, "subject": person(), "legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"},
        201,
    )
    assert asked["status"] == "answered"
    assert api.get(f"{B}/counter", f"/provision-requests/{asked['request_id']}")["status"] == "answered"
    # a third agency learns nothing, not even that the request exists
    assert api.get("131032/counter", f"/provision-requests/{asked['request_id']}", status=404)["code"] == "not_found"


# -- refusals -------------------------------------------------------------------------------------------------
def _unchanged(api: Api, call: Callable[[], Any]) -> Any:
    # signing in is recorded (a token grant is a ledger event): every caller below signs in first
    for who in (f"{A}/apr", f"{B}/apr", f"{B}/apr2", f"{B}/counter", f"{B}/op", f"{B}/req"):
        api.h(who)
    before = api.node.app.max_position()
    result = call()
    assert api.node.app.max_position() == before, "a refused command must not write"
    return result


def test_roles_and_four_eyes_are_403_with_their_codes(api: Api, person: Callable[[], str]) -> None:
    x = person()
    rid = api.post(f"{B}/req", "/flag-requests", {"subject": x, "flags": [ND]}, 201)["request_id"]
    assert (
        _unchanged(api, lambda: api.post(f"{B}/counter", "/flag-requests", {"subject": x, "flags": [ND]}, 403))["code"]
        == "role_not_permitted"
    )
    assert (
        _unchanged(api, lambda: api.post(f"{B}/counter", f"/flag-requests/{rid}/approve", {}, 403))["code"]
        == "role_not_permitted"
    )
    theirs = _unchanged(api, lambda: api.post(f"{A}/apr", f"/flag-requests/{rid}/approve", {}, 404))
    assert theirs == {"code": "not_found", "message": "unknown flag request"}, "as if it did not exist"
    assert (
        _unchanged(api, lambda: api.post(f"{B}/op", f"/flag-requests/{rid}/execute", status=409))["code"] == "conflict"
    ), "not approved yet"
    assert (
        _unchanged(
            api, lambda: api.post(f"{B}/apr", "/body-requests", {"municipality": A, "subject": x, "flags": [ND]}, 403)
        )["code"]
        == "role_not_permitted"
    )
    body = _unchanged(
        api, lambda: api.post(f"{B}/req", "/body-requests", {"municipality": A, "subject": x, "flags": [ND]}, 403)
    )
    assert body == {"code": "forbidden", "message": "not allowed"}, "only protection bodies; no detail leaks"
    grant_approved(api.node, Actor(B, "admin"), "req", "approver")
    assert (
        _unchanged(api, lambda: api.post(f"{B}/req", f"/flag-requests/{rid}/approve", {}, 403))["code"] == "token_scope"
    ), "issued before the grant"
    api._auth.clear()
    assert (
        _unchanged(api, lambda: api.post(f"{B}/req", f"/flag-requests/{rid}/approve", {}, 403))["code"] == "four_eyes"
    )


def test_unknown_ids_are_404_and_bad_input_is_422_with_fields(api: Api, person: Callable[[], str]) -> None:
    missing = str(uuid4())
    for path in (
        f"/flag-requests/{missing}/approve",
        f"/flag-requests/{missing}/reject",
        f"/provision-requests/{missing}/approve",
    ):
        body = {"reason": "r"} if path.endswith("reject") else {"proposal_version": 3} if "provision" in path else {}
        assert _unchanged(api, lambda p=path, b=body: api.post(f"{B}/apr", p, b, 404))["code"] == "not_found"
    assert api.get(f"{B}/apr", f"/flag-requests/{missing}", status=404)["code"] == "not_found"
    theirs = api.post(f"{A}/req", "/flag-requests", {"subject": person(), "flags": [ND]}, 201)["request_id"]
    assert api.get(f"{B}/apr", f"/flag-requests/{theirs}", status=404)["code"] == "not_found", (
        "another agency's request is as if it did not exist"
    )
    assert api.post(f"{B}/op", f"/flag-requests/{missing}/execute", status=404)["code"] == "not_found"
    assert (
        api.post(
            f"{B}/rev",
            f"/provision-requests/{missing}/propose",
            {"decision": "provide", "applicant_check": "unknown"},
            404,
        )["code"]
        == "not_found"
    )
    assert (
        api.post(
            f"{A}/counter",
            "/provision-requests",
            {
                "provider": "999999",
                "subject": person(),
                "legal_item": 74,
                "procedure": "児童手当",
                "info_kind": "地方税関係情報",
            },
            404,
        )["code"]
        == "not_found"
    )
    bad = api.post(f"{B}/req", "/flag-requests", {"subject": "123", "flags": []}, 422)
    assert bad["code"] == "invalid_input" and {tuple(f["loc"]) for f in bad["fields"]} == {("body", "flags")}
    bad = api.post(f"{B}/req", "/flag-requests", {"subject": "123456789012", "flags": [ND]}, 422)
    assert "individual number" in bad["message"] and "123456789012" not in str(bad), "the number is not echoed"
    bad = api.post(f"{B}/req", "/flag-requests", {"subject": person(), "flags": [ND], "kind": "release"}, 404)
    assert bad["code"] == "not_found", "nothing held by B to release"
    past = {"subject": person(), "flags": [ND], "review_date": str(date.today() - timedelta(days=1))}
    assert api.post(f"{B}/req", "/flag-requests", past, 422)["code"] == "invalid_input"
    assert api.post(f"{B}/req", "/flag-requests", {"subject": person(), "flags": [ND], "extra": 1}, 422)["fields"][0][
        "loc"
    ] == ["body", "extra"]
    assert api.post(f"{B}/req", "/cases", {"victim": "a\x00b"}, 422)["code"] == "invalid_input"
    r = api.http.post(f"/api/v1/flag-requests/{missing}/approve", headers=api.h(f"{B}/apr"), content=b"{not json")
    assert r.status_code == 422
    r = api.http.post("/api/v1/flag-requests/not-a-uuid/approve", headers=api.h(f"{B}/apr"), json={})
    assert r.status_code == 422 and r.json()["fields"][0]["loc"] == ["path", "request_id"]


def test_two_approvals_racing_the_second_is_409(api: Api, person: Callable[[], str]) -> None:
    rid = api.post(f"{B}/req", "/flag-requests", {"subject": person(), "flags": [ND]}, 201)["request_id"]
    api.post(f"{B}/apr", f"/flag-requests/{rid}/approve")
    assert (
        _unchanged(api, lambda: api.post(f"{B}/apr2", f"/flag-requests/{rid}/approve", {}, 409))["code"] == "conflict"
    )


def test_held_decisions_refusals(api: Api, person: Callable[[], str]) -> None:
    x = person()
    api.protect(B, x, [NAR])
    rid = api.post(
        f"{A}/counter",
        "/provision-requests",
        {"provider": A, "subject": x, "legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"},
        201,
    )["request_id"]
    assert (
        api.post(f"{A}/apr", f"/provision-requests/{rid}/approve", {"proposal_version": 3}, 409)["code"] == "conflict"
    ), "nothing proposed yet"
    assert api.post(
        f"{B}/rev", f"/provision-requests/{rid}/propose", {"decision": "provide", "applicant_check": "unknown"}, 404
    ) == {"code": "not_found", "message": "unknown provision request"}
    assert (
        api.post(
            f"{A}/counter",
            f"/provision-requests/{rid}/propose",
            {"decision": "provide", "applicant_check": "unknown"},
            403,
        )["code"]
        == "role_not_permitted"
    )
    assert api.post(
        f"{A}/rev", f"/provision-requests/{rid}/propose", {"decision": "maybe", "applicant_check": "unknown"}, 422
    )["fields"][0]["loc"] == ["body", "decision"]
    api.post(
        f"{A}/rev", f"/provision-requests/{rid}/propose", {"decision": "provide", "applicant_check": "protected_person"}
    )
    assert api.post(f"{A}/apr", f"/provision-requests/{rid}/approve", {}, 422)["fields"][0]["loc"] == [
        "body",
        "proposal_version",
    ], "an approval names the proposal it approves"
    (shown,) = api.get(f"{A}/apr", "/queue")["held"]
    assert (
        api.post(f"{A}/apr", f"/provision-requests/{rid}/approve", {"proposal_version": shown["proposal_version"]})[
            "status"
        ]
        == "provided_manually"
    )
    assert api.get(f"{A}/counter", f"/provision-requests/{rid}")["status"] == "in_progress", "until the batch time"
    release_decided(api.node.app)
    assert api.get(f"{A}/counter", f"/provision-requests/{rid}")["status"] == "answered"
