"""Issue 18, reads and system callers: a person's portal records are the person's, who protects a person is the
holder's own business, and a timeline is its reader's agency's.

Reproduced against ``main`` at d0a0e2a (each was a 200 with the data): any counter clerk at any agency, the
protecting one included, read anyone's Mynaportal records and self-information; reviewers and auditors at any
agency read the holding agencies by giving any purpose; on a node hosting several agencies an auditor's
timeline showed another agency's intake notes and flags. Each test names the threat it defends against.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from ledger.api.auth import issue_system_token, sign_in
from ledger.app import Actor
from ledger.errors import AuthError, PermissionDenied
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import STAFF_ROLES, A, B, C
from tests.integration.test_api_commands import NAR, ND, Api
from tests.integration.test_api_console import login_field
from tests.support.api import access_reads, client, system_auth

ASK = {"legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"}
PORTAL_PATHS = ("/queries/portal-records", "/queries/self-information")


def topics(node: Node) -> list[str]:
    return [env.header.topic.split(":", 1)[1] for _, _, env in node.app.envelopes()]


def test_no_staff_member_reads_a_person_s_portal_records_not_even_at_the_protecting_agency(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: the perpetrator at a counter (or befriending a clerk), and an insider at any agency. On main every
    counter clerk read X's provision records and self-information (the provider that protects X included).
    Now every staff member, whatever their roles and agency, gets 403 ``system_only``; only the portal's
    system account reads, for the person or their proxy, and still hides what the flags hide."""
    api, x = Api(sqlite_node), person()
    answered = api.post(f"{A}/counter", "/provision-requests", {"provider": C, "subject": x, **ASK}, 201)
    api.protect(B, x, [ND])
    later = api.post(f"{A}/counter", "/provision-requests", {"provider": C, "subject": x, **ASK}, 201)
    everyone = [f"{agency}/{staff}" for agency in (A, B, C) for staff in (*STAFF_ROLES, "admin")]
    for who in everyone:
        api.h(who)  # each token's grant is recorded when issued: before the count below
    before = sqlite_node.app.max_position()
    for who in everyone:
        agency, staff = who.split("/")
        for path in PORTAL_PATHS:
            refused = api.post(who, path, {"viewer": x, "subject": x}, 403)
            assert refused["code"] == "system_only", (agency, staff, path)
            assert x not in str(refused) and C not in str(refused)
    assert sqlite_node.app.max_position() == before, "refusals record nothing"
    own = api.post(f"{B}/portal", "/queries/portal-records", {"viewer": x, "subject": x})
    assert own["access"] == "self" and own["records"] == [], "hidden while NON_DISCLOSURE applies (sticky)"
    assert {answered["request_id"], later["request_id"]}.isdisjoint(r["request_id"] for r in own["records"])


def test_the_portal_signs_in_with_its_own_secret_and_acts_only_as_the_portal(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threats: an administrator minting access for a program (or a program's name) and using it as staff; a
    stolen system token used for staff work. The system account is enrolled as a recorded act naming its kind,
    signs in only with its own secret (no administrator issues its token), and is refused every staff view
    and act (``staff_only``); a deactivated account's token stops at once."""
    node, x = sqlite_node, person()
    http = client(node)
    admin = Actor(A, "admin")
    secret = node.app.enroll_system_account(admin, "portal", "portal")
    assert topics(node)[-1] == "SystemAccount.Enrolled"
    enrolled = node.app.system_account(A, "portal")
    assert (enrolled.kind, enrolled.roles) == ("portal", ["portal"]) and secret not in enrolled.secret_hash
    wrong = http.post("/api/v1/system/token", json={"agency": A, "account": "portal", "secret": secret + "x"})
    unknown = http.post("/api/v1/system/token", json={"agency": A, "account": "nobody", "secret": secret})
    assert (wrong.status_code, unknown.status_code) == (401, 401) and wrong.json() == unknown.json()
    signed_in = http.post("/api/v1/system/token", json={"agency": A, "account": "portal", "secret": secret})
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["kind"] == "system" and body["roles"] == ["portal"] and topics(node)[-1] == "TokenGrant.Issued"
    h = {"Authorization": "Bearer " + body["token"]}
    assert http.get("/api/v1/whoami", headers=h).json()["kind"] == "system"
    assert http.post("/api/v1/queries/portal-records", json={"viewer": x, "subject": x}, headers=h).status_code == 200
    for path, payload in (
        ("/api/v1/queries/counter", {"subject": x}),
        ("/api/v1/queries/nationwide", {"subject": x}),
        ("/api/v1/flag-requests", {"subject": x, "flags": [ND]}),
        ("/api/v1/cases", {"victim": x}),
    ):
        r = http.post(path, json=payload, headers=h)
        assert (r.status_code, r.json()["code"]) == (403, "staff_only"), path
    assert http.get("/api/v1/queue", headers=h).json()["code"] == "staff_only"
    form = {"agency": A, "staff": "portal", "password": secret, "csrf": login_field(http)}
    assert http.post("/console/login", data=form).status_code == 401, "no console session for a program"
    with pytest.raises(AuthError):  # a staff sign-in names no program (and nobody mints tokens for another)
        sign_in(node, A, "portal", "fls1_" + "0" * 43)
    with pytest.raises(AuthError):  # nor sign it in without its secret
        issue_system_token(node, A, "portal", "fls1_" + "0" * 43)
    old = secret
    secret = node.app.replace_system_secret(admin, "portal")
    with pytest.raises(AuthError):
        issue_system_token(node, A, "portal", old)
    r = http.post("/api/v1/queries/portal-records", json={"viewer": x, "subject": x}, headers=h)
    assert r.status_code == 401, "a token from before the new secret ends with it"
    fresh, _ = issue_system_token(node, A, "portal", secret, ttl=timedelta(minutes=5))
    h = {"Authorization": "Bearer " + fresh}
    assert http.post("/api/v1/queries/portal-records", json={"viewer": x, "subject": x}, headers=h).status_code == 200
    node.app.deactivate_system_account(admin, "portal")
    r = http.post("/api/v1/queries/portal-records", json={"viewer": x, "subject": x}, headers=h)
    assert r.status_code == 401
    with pytest.raises(AuthError):
        issue_system_token(node, A, "portal", secret)


def test_the_linkage_gateway_relays_queries_and_reads_nothing_else(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: a system caller's credentials stolen (or misused by its operator): the linkage gateway relays a
    query for its agency — held, as any query about a protected person — but reads no portal (its kind's
    roles only) and no staff view."""
    api, x = Api(sqlite_node), person()
    api.protect(B, x, [NAR])
    api._auth[A, "gw"] = system_auth(sqlite_node, A, "gw", "linkage_gateway")
    answer = api.post(f"{A}/gw", "/provision-requests", {"provider": C, "subject": x, **ASK}, 201)
    assert answer["status"] == "in_progress", "the protection still holds a relayed query"
    assert api.post(f"{A}/gw", "/queries/portal-records", {"viewer": x, "subject": x}, 403)["code"] == (
        "role_not_permitted"
    )
    assert api.post(f"{A}/gw", "/queries/counter", {"subject": x}, 403)["code"] == "staff_only"
    with pytest.raises(PermissionDenied):
        sqlite_node.app.grant_role(Actor(A, "admin"), "counter", "linkage")


def test_no_staff_member_of_another_agency_learns_who_protects_a_person(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threats: a peer agency's reviewer or auditor, and the perpetrator talking to any counter. On main a
    reviewer or auditor anywhere read the holding agencies by giving any purpose. Now a purpose is refused
    (403 ``holders_withheld``, nothing recorded) for everyone; a holder sees only its own holding; and the
    protection still works: a query about the person is held and the holder hears of it."""
    api, x = Api(sqlite_node), person()
    api.protect(B, x, [ND, NAR])
    api.protect(C, x, [ND])
    before = len(access_reads(sqlite_node))
    for who in (f"{A}/rev", f"{A}/aud", f"{A}/counter", f"{B}/aud", f"{C}/rev"):
        refused = api.post(who, "/queries/nationwide", {"subject": x, "purpose": "Point 5: contact"}, 403)
        assert refused["code"] == "holders_withheld"
    assert len(access_reads(sqlite_node)) == before
    at_a = api.post(f"{A}/aud", "/queries/nationwide", {"subject": x})
    assert at_a["holders"] is None and len(at_a["liaison"]) == 2 and B not in str(at_a) and C not in str(at_a)
    assert api.post(f"{B}/counter", "/queries/nationwide", {"subject": x})["holders"] == [B]
    assert api.post(f"{C}/counter", "/queries/nationwide", {"subject": x})["holders"] == [C], "not B"
    # the counter still holds, and both holders still hear of the request
    answer = api.post(f"{A}/counter", "/provision-requests", {"provider": A, "subject": x, **ASK}, 201)
    assert answer["status"] == "in_progress"
    for holder in (B, C):
        probes = views.work_queue(sqlite_node, Actor(holder, "rev")).probes
        assert [p.request_id for p in probes] == [answer["request_id"]]
    # contact goes through the liaison reference, which only its holder resolves
    for ref in at_a["liaison"]:
        owners = []
        for holder in (A, B, C):
            r = api.http.post(
                "/api/v1/queries/liaison", json={"reference": ref, "purpose": "連絡"}, headers=api.h(f"{holder}/rev")
            )
            if r.status_code == 200:
                owners.append(holder)
            else:
                assert r.status_code == 404
        assert len(owners) == 1 and owners[0] in (B, C)


def test_a_timeline_shows_only_the_reader_s_own_agency_s_events(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: a peer agency on a node that hosts several agencies. On main A's auditor read B's intake notes
    (ProtectionCase.Opened with its notes) and B's flags in X's timeline. Now each agency's auditor sees only
    the events its own agency signed, and a probe notice lists no other holder."""
    node, x, y = sqlite_node, person(), person()
    api = Api(node)
    node.app.open_case(Actor(B, "req"), x, perpetrators=[y], notes="避難先: 親族宅 (B市内)")
    api.protect(B, x, [NAR])
    api.post(f"{A}/counter", "/provision-requests", {"provider": C, "subject": x, **ASK}, 201)
    for agency in (A, B, C):
        entries = api.post(f"{agency}/aud", "/queries/timeline", {"subject": x, "purpose": "監査"})
        assert {e["agency"] for e in entries} == {agency}, agency
        assert entries[-1]["event"] == "AccessRecord.ProtectedDetailsRead"
        if agency != B:
            assert "避難先" not in str(entries) and B not in str([e["detail"] for e in entries])
    at_b = [e["event"] for e in api.post(f"{B}/aud", "/queries/timeline", {"subject": x, "purpose": "監査"})]
    assert at_b[:2] == ["ProtectionCase.Opened", "FlagRequest.Requested"] and "Protection.FlagsSet" in at_b
    at_c = api.post(f"{C}/aud", "/queries/timeline", {"subject": x, "purpose": "監査"})
    (probe,) = [e for e in at_c if e["event"] == "ProbeNotice.Sent"]
    assert probe["detail"]["holders"] == [], "C signed the notice; B, the holder, is not named to C"
    assert "ProvisionRequest.Held" in [e["event"] for e in at_c]
