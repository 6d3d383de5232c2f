"""HTTP API queries: role-filtered views, recorded reads, and refusals that say nothing about protection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.integration.test_api_commands import NAR, ND, Api
from tests.support.api import access_reads

ASK = {"legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"}


def test_counter_view_shows_the_banner_but_never_the_protecting_agency(node: Node, person: Callable[[], str]) -> None:
    api, x, y = Api(node), person(), person()
    api.protect(B, x, [ND, NAR])
    api.post(f"{A}/counter", "/provision-requests", {"provider": C, "subject": x, **ASK}, 201)
    view = api.post(f"{A}/counter", "/queries/counter", {"subject": x})
    p = view["protection"]
    assert p["protected"] and p["flags"] == [ND, NAR] and p["holders"] is None and p["basis"] == "other_agency"
    assert B not in str(view) and len(p["liaison"]) == 1
    assert [a["status"] for a in view["answers"]] == ["in_progress"] and view["answers"][0]["provider"] is None
    plain = api.post(f"{A}/counter", "/queries/counter", {"subject": y})
    assert not plain["protection"]["protected"] and plain["answers"] == []
    own = api.post(f"{B}/counter", "/queries/counter", {"subject": x})["protection"]
    assert own["holders"] == [B] and own["basis"] == "holding_agency"
    assert api.post(f"{A}/counter", "/queries/request-path", {"subject": x}) == {"path": "manual"}
    assert api.post(f"{A}/counter", "/queries/request-path", {"subject": y}) == {"path": "automatic"}
    assert access_reads(node) == [], "the banner is not a read of protected details"


def test_refusals_are_the_same_whether_or_not_the_person_is_protected(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    api, x, y = Api(sqlite_node), person(), person()
    api.protect(B, x, [ND, NAR])
    for subject in (x, y):
        answers = [
            api.post(f"{A}/req", "/queries/counter", {"subject": subject}, 403),
            api.post(f"{A}/counter", "/queries/timeline", {"subject": subject, "purpose": "curious"}, 403),
            api.post(f"{A}/req", "/queries/request-path", {"subject": subject}, 403),
        ]
        assert [a["code"] for a in answers] == ["role_not_permitted"] * 3
        assert answers == [{"code": "role_not_permitted", "message": "your roles do not allow this action"}] * 3
        for who in (f"{A}/counter", f"{A}/aud", f"{B}/rev"):
            holders = api.post(who, "/queries/nationwide", {"subject": subject, "purpose": "curious"}, 403)
            assert holders["code"] == "holders_withheld"
        for who in (f"{A}/counter", f"{B}/counter", f"{B}/aud"):
            portal = api.post(who, "/queries/portal-records", {"viewer": subject, "subject": subject}, 403)
            assert portal["code"] == "system_only"
    assert access_reads(sqlite_node) == [], "refused reads record nothing"


def test_reads_of_protected_details_are_recorded_before_they_are_shown(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    api, x = Api(sqlite_node), person()
    api.protect(B, x, [ND])
    seen = api.post(f"{A}/aud", "/queries/nationwide", {"subject": x})
    assert seen["holders"] is None and seen["basis"] == "other_agency"
    assert access_reads(sqlite_node) == [], "the banner is not a read"
    timeline = api.post(f"{B}/aud", "/queries/timeline", {"subject": x, "purpose": "監査"})
    events = [e["event"] for e in timeline]
    assert events[0] == "FlagRequest.Requested" and "Protection.FlagsSet" in events
    assert events[-1] == "AccessRecord.ProtectedDetailsRead", "the read itself is on the timeline"
    ref = seen["liaison"][0]
    assert api.post(f"{A}/rev", "/queries/liaison", {"reference": ref, "purpose": "連絡"}, 404)["code"] == "not_found"
    target = api.post(f"{B}/rev", "/queries/liaison", {"reference": ref, "purpose": "本人への連絡"})
    assert target == {"subject": sqlite_node.app.subject(x), "flags": [ND]}
    assert [r[:2] for r in access_reads(sqlite_node)] == [(B, "aud"), (B, "rev")]
    assert (
        api.post(f"{B}/rev", "/queries/liaison", {"reference": "B-131024", "purpose": "x"}, 422)["code"]
        == "invalid_input"
    )


def test_portal_views_for_subject_proxy_and_stranger(sqlite_node: Node, person: Callable[[], str]) -> None:
    api, x, stranger = Api(sqlite_node), person(), person()
    before = api.post(f"{A}/counter", "/provision-requests", {"provider": C, "subject": x, **ASK}, 201)
    own = api.post(f"{A}/portal", "/queries/portal-records", {"viewer": x, "subject": x})
    assert own["access"] == "self" and [r["request_id"] for r in own["records"]] == [before["request_id"]]
    assert api.post(f"{A}/portal", "/queries/portal-records", {"viewer": stranger, "subject": x}) == {
        "access": "none",
        "records": [],
    }
    info = api.post(f"{A}/portal", "/queries/self-information", {"viewer": x, "subject": x})
    assert info["access"] == "self" and not info["withheld"] and [h["agency"] for h in info["holdings"]] == [C]
    api.protect(B, x, [ND, NAR])
    assert api.post(f"{A}/portal", "/queries/portal-records", {"viewer": x, "subject": x})["records"] == []
    info = api.post(f"{A}/portal", "/queries/self-information", {"viewer": x, "subject": x})
    assert info["withheld"] and info["holdings"] == []
    for who in (f"{A}/apr", f"{A}/counter", f"{C}/counter"):
        for path in ("/queries/portal-records", "/queries/self-information"):
            assert api.post(who, path, {"viewer": x, "subject": x}, 403)["code"] == "system_only"


def test_the_work_queue_lists_approvals_reviews_and_held_requests_for_deciders(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    api, x, y = Api(sqlite_node), person(), person()
    soon = str(date.today() + timedelta(days=10))
    rid = api.post(f"{B}/req", "/flag-requests", {"subject": x, "flags": [NAR], "review_date": soon}, 201)
    assert [a["request_id"] for a in api.get(f"{B}/apr", "/queue")["approvals"]] == [rid["request_id"]]
    api.post(f"{B}/apr", f"/flag-requests/{rid['request_id']}/approve")
    api.post(f"{B}/op", f"/flag-requests/{rid['request_id']}/execute")
    due = api.get(f"{B}/apr", "/queue")["reviews_due"]
    assert [(d["flag"], d["days_left"]) for d in due] == [(NAR, 10)]
    assert api.get(f"{B}/apr", f"/queue?today={date.today() - timedelta(days=30)}")["reviews_due"] == []
    api.post(f"{C}/counter", "/provision-requests", {"provider": A, "subject": x, **ASK}, 201)
    api.post(f"{C}/counter", "/provision-requests", {"provider": A, "subject": y, **ASK}, 201)
    assert len(api.get(f"{A}/rev", "/queue")["held"]) == 1
    assert api.get(f"{A}/counter", "/queue")["held"] == [], "held requests only for those who decide them"
    reads = [
        (e["actor"], e["detail"]["what"])
        for e in api.post(f"{A}/aud", "/queries/timeline", {"subject": x, "purpose": "監査"})
        if e["event"] == "AccessRecord.ProtectedDetailsRead"
    ]
    assert reads[0] == ("rev", "held-request queue"), "the reviewer's listing was recorded before it was shown"
    assert api.get(f"{A}/rev", "/queue?today=yesterday", status=422)["code"] == "invalid_input"
