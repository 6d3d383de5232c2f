"""Bearer tokens: from the person's own sign-in (`POST /api/v1/sign-in`, `flagledger staff token`, the API
helper), refused with 401 when missing, malformed, forged, altered, expired, from another node or for a
deactivated staff member."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.api.auth import verify_token
from ledger.app import Actor
from ledger.cli.main import main
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, NodeFactory
from tests.support.api import auth, client, token
from tests.support.staff import password_of


def _who(node: Node, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    r = client(node).get("/api/v1/whoami", headers=headers)
    return r.status_code, r.json()


def test_a_token_names_agency_staff_roles_and_expiry(sqlite_node: Node) -> None:
    status, body = _who(sqlite_node, auth(sqlite_node, B, "rev"))
    assert status == 200 and body["agency"] == B and body["staff"] == "rev" and body["roles"] == ["reviewer"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer nonsense",
        "Bearer fl1.e30.AAAA",
        "Bearer fl1.!!!.!!!",
    ],
)
def test_missing_or_malformed_tokens_are_401(sqlite_node: Node, header: str | None) -> None:
    status, body = _who(sqlite_node, {"Authorization": header} if header else {})
    assert status == 401 and body["code"] == "unauthenticated"


def test_forged_altered_or_foreign_tokens_are_401(make_node: NodeFactory) -> None:
    node, other = make_node(), make_node(name="other")
    good = token(node, B, "req")
    prefix, body, mac = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["roles"] = ["requester", "approver"]  # privilege escalation attempt
    raised = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (f"{prefix}.{raised}.{mac}", f"{prefix}.{body}.{mac[:-2]}AA", token(other, B, "req")):
        status, out = _who(node, {"Authorization": f"Bearer {bad}"})
        assert status == 401 and out["code"] == "unauthenticated", bad
    r = client(node).get("/api/v1/whoami", headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


def test_expired_tokens_and_deactivated_staff_are_401(sqlite_node: Node) -> None:
    node = sqlite_node
    headers = auth(node, B, "apr", ttl=timedelta(minutes=5))
    real = node.app.clock
    node.app.clock = lambda: real() + timedelta(minutes=6)
    try:
        status, body = _who(node, headers)
    finally:
        node.app.clock = real
    assert status == 401 and "expired" in str(body["message"])
    assert _who(node, headers)[0] == 200
    node.app.deactivate_staff(Actor(B, "admin"), "apr")
    status, body = _who(node, headers)
    assert status == 401 and "deactivated" in str(body["message"])


def test_a_role_revoked_after_issue_stops_counting_and_tokens_can_be_narrowed(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    node = sqlite_node
    node.app.grant_role(Actor(B, "admin"), "req", "counter")
    narrow = auth(node, B, "req", roles=("counter",))
    http = client(node)
    r = http.post("/api/v1/flag-requests", json={"subject": person(), "flags": ["NON_DISCLOSURE"]}, headers=narrow)
    assert r.status_code == 403 and r.json()["code"] == "token_scope"
    full = auth(node, B, "req")
    node.app.revoke_role(Actor(B, "admin"), "req", "requester")
    r = http.post("/api/v1/flag-requests", json={"subject": person(), "flags": ["NON_DISCLOSURE"]}, headers=full)
    assert r.status_code == 403 and r.json()["code"] == "role_not_permitted"


def test_only_the_person_signs_in_for_themselves(sqlite_node: Node) -> None:
    """Threat: an administrator (and a shell user). Nobody mints a token for someone else any more: a token
    comes from the person's own password; a wrong password, a stranger, a deactivated member or a token wider
    than the person's roles is refused, and only the person's own sign-in is recorded (never the token)."""
    node = sqlite_node
    http = client(node)
    form = {"agency": B, "staff": "req", "password": password_of(B, "req")}
    before = node.app.max_position()
    for wrong, status in (
        ({**form, "password": "not-req's-password"}, 401),
        ({**form, "staff": "nobody"}, 401),
        ({**form, "agency": "999999"}, 401),
        ({**form, "ttl_seconds": 13 * 3600}, 422),
        ({**form, "roles": ["approver"]}, 422),
    ):
        r = http.post("/api/v1/sign-in", json=wrong)
        assert r.status_code == status, (wrong, r.text)
    assert http.post("/api/v1/sign-in", json={**form, "password": ""}).status_code == 422
    failures = [
        env.header.topic
        for _, _, env in node.app.envelopes(start=before + 1)
        if not env.header.topic.endswith("TokenGrant.Issued")
    ]
    assert any(t.endswith("UnlockFailed") for t in failures), "the wrong password is recorded"
    assert not [e for _, _, e in node.app.envelopes(start=before + 1) if e.header.topic.endswith("TokenGrant.Issued")]
    node.app.deactivate_staff(Actor(B, "admin"), "op")
    r = http.post("/api/v1/sign-in", json={**form, "staff": "op", "password": password_of(B, "op")})
    assert (r.status_code, r.json()["code"]) == (403, "inactive_staff"), "a deactivated member's password opens nothing"
    after_refusal = node.app.max_position()
    r = http.post("/api/v1/sign-in", json=form)
    assert r.status_code == 200, r.text
    body = r.json()
    who = verify_token(node, body["token"])
    assert (who.actor, who.roles) == (Actor(B, "req"), ("requester",))
    (grant,) = [
        ev
        for _, _, env in node.app.envelopes(start=after_refusal + 1)
        if (ev := node.app.signed_mapper.decode(env)).__class__.__qualname__ == "TokenGrant.Issued"
    ]
    assert (grant.agency, grant.issuer, grant.staff, grant.roles, grant.token_id, grant.via) == (
        B,
        "req",
        "req",
        list(who.roles),
        who.token_id,
        "password",
    ), "the person's own sign-in is in the signed log, the token is not"
    assert not any(hasattr(grant, f) for f in ("token", "mac", "secret", "password"))


def test_the_cli_signs_you_in_and_the_api_accepts_the_token(
    make_node: NodeFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threat: an administrator. `staff token` is your own sign-in: the administrator's password gets the
    administrator's token, never the counter clerk's (the old `staff token --as ADMIN STAFF` is refused)."""
    node = make_node()
    data_dir = str(node.config.data_dir)
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", password_of(A, "counter"))
    assert main(["--data-dir", data_dir, "staff", "token", "--as", f"{A}/counter", "--ttl", "15m"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["agency"] == A and issued["staff"] == "counter" and issued["roles"] == ["counter"]
    assert _who(node, {"Authorization": f"Bearer {issued['token']}"})[0] == 200
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", password_of(A, "admin"))
    with pytest.raises(SystemExit) as refused:  # no STAFF argument any more: a token for someone else
        main(["--data-dir", data_dir, "staff", "token", "--as", f"{A}/admin", "counter"])
    assert refused.value.code == 2
    capsys.readouterr()
    assert main(["--data-dir", data_dir, "staff", "token", "--as", f"{A}/counter"]) == 4, "the admin's password"
    assert "password" in capsys.readouterr().err


SIGN_IN = {"/api/v1/system/token", "/api/v1/sign-in"}  # where a token is obtained: none needed yet


def test_every_operation_of_the_document_needs_a_token(sqlite_node: Node) -> None:
    doc = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "openapi.json").read_text())
    http = client(sqlite_node)
    calls = 0
    for path, ops in doc["paths"].items():
        url = path.replace("{request_id}", "00000000-0000-0000-0000-000000000000")
        for method in ops:
            if path in SIGN_IN:  # where a token is obtained with the account's own secret: no token yet
                assert http.request(method.upper(), url, json={}).status_code == 422
                continue
            r = http.request(method.upper(), url, json={})
            assert r.status_code == 401 and r.json()["code"] == "unauthenticated", (method, path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            calls += 1
    assert calls >= 20
