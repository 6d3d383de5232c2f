"""HTTP API helpers for tests: a TestClient on a real node and tokens from each person's own sign-in (their test
password, tests/support/staff.py), the way `flagledger staff token` and `POST /api/v1/sign-in` give them."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from ledger.api import create_app
from ledger.api.auth import issue_system_token, sign_in
from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.support.staff import password_of


def client(node: Node) -> TestClient:
    # https: the session cookie is Secure (ledger/api/settings.py), and a client keeps it off plain HTTP
    return TestClient(create_app(node), base_url="https://testserver", raise_server_exceptions=False)


def token(
    node: Node, agency: str, staff: str, *, roles: tuple[str, ...] | None = None, ttl: timedelta = timedelta(hours=1)
) -> str:
    return sign_in(node, agency, staff, password_of(agency, staff), roles=roles, ttl=ttl)[0]


def auth(node: Node, agency: str, staff: str, **kw: object) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(node, agency, staff, **kw)}  # type: ignore[arg-type]


def system_auth(node: Node, agency: str, account: str = "portal", kind: str = "portal") -> dict[str, str]:
    """Enrol a system account (the portal by default) and sign it in with its own secret, as a deployment's
    portal would (``POST /api/v1/system/token``)."""
    secret = node.app.enroll_system_account(Actor(agency, "admin"), account, kind)
    return {"Authorization": "Bearer " + issue_system_token(node, agency, account, secret)[0]}


def access_reads(node: Node) -> list[tuple[str, str, str]]:
    """(agency, staff, what) of every recorded read of protected details, in log order."""
    out = []
    for _, _, env in node.app.envelopes():
        if env.header.topic.endswith("AccessRecord.ProtectedDetailsRead"):
            ev = node.app.signed_mapper.decode(env)
            out.append((str(ev.agency), str(ev.staff), str(ev.what)))  # type: ignore[attr-defined]
    return out
