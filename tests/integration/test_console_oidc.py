"""Staff sign in to the console through their agency's own OpenID Connect provider (a real provider on a loopback
port, tests/support/oidc_provider.py; the node fetches its discovery document, keys and tokens over HTTP).

The story: municipality B connects its identity provider; B's approver signs in there and lands on the console
as themselves, with the roles the ledger records and a recorded grant. Everything a forger, a phishing page or a
confused provider could send back is refused, and nothing about the refusal reaches the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from ledger.api.oidc import OidcProvider
from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from ledger.runtime.config import NodeConfig
from tests.conftest import A, B
from tests.support.api import client
from tests.support.oidc_provider import Provider, running_provider


@pytest.fixture
def idp(sqlite_node: Node) -> Iterator[Provider]:
    with running_provider() as provider:
        sqlite_node.config.oidc = {"providers": {B: {"issuer": provider.issuer, "client_id": provider.client_id}}}
        yield provider


def _round_trip(http: TestClient, provider: Provider, agency: str = B) -> Any:
    """Start at the console, pass the provider's page, come back: the console's answer to the callback."""
    start = http.get(f"/console/oidc/{agency}/start", follow_redirects=False)
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(f"{provider.issuer}/authorize?")
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302
    back = at_provider.headers["location"]
    assert back.startswith("https://testserver/console/oidc/")
    return http.get(back.removeprefix("https://testserver"), follow_redirects=False)


def _grants(node: Node) -> list[tuple[str, str, str]]:
    out = []
    for _, _, env in node.app.envelopes():
        if env.header.topic.endswith("TokenGrant.Issued"):
            ev = node.app.signed_mapper.decode(env)
            out.append((str(ev.agency), str(ev.staff), str(ev.via)))  # type: ignore[attr-defined]
    return out


def test_an_approver_signs_in_through_the_agencys_provider_as_themselves(sqlite_node: Node, idp: Provider) -> None:
    """Threat: an administrator (and a shell user). The session comes from the person's own sign-in at their
    agency's provider, not from a token someone minted for them, and it is recorded as such (``via=oidc``)."""
    idp.user = "apr"
    http = client(sqlite_node)
    form = http.get("/console/login")
    assert f"/console/oidc/{B}/start" in form.text and f"/console/oidc/{A}/start" not in form.text
    done = _round_trip(http, idp)
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    session = [c for c in done.headers.get_list("set-cookie") if c.startswith("flagledger_session=")]
    assert session and "HttpOnly" in session[0] and "SameSite=strict" in session[0]
    home = http.get("/console/")
    assert home.status_code == 200 and "B市 / apr" in home.text and "approver" in home.text
    assert (B, "apr", "oidc") in _grants(sqlite_node)


@pytest.mark.parametrize("misbehave", ["audience", "nonce", "expired", "foreign_key", "issuer"])
def test_a_token_the_provider_did_not_mean_for_this_sign_in_is_refused(
    sqlite_node: Node, idp: Provider, misbehave: str
) -> None:
    """Threat: the network and a perpetrator replaying or forging an identity token (another client's, another
    attempt's, a stale one, one signed by a key the provider does not publish, or from another issuer)."""
    idp.user, idp.misbehave = "apr", misbehave
    http = client(sqlite_node)
    answer = _round_trip(http, idp)
    assert answer.status_code == 401 and "サインインできませんでした" in answer.text
    assert not any(c.startswith("flagledger_session=") for c in answer.headers.get_list("set-cookie"))
    assert (B, "apr", "oidc") not in _grants(sqlite_node)


def test_the_answer_must_come_back_to_the_browser_that_started(sqlite_node: Node, idp: Provider) -> None:
    """Threat: a perpetrator's page (login CSRF). Someone who starts a sign-in as themselves and sends the
    callback link to a clerk cannot plant their session in the clerk's browser: the state is bound to the
    browser that started it by an HMAC'd cookie, and the code is good once."""
    idp.user = "apr"
    attacker = client(sqlite_node)
    start = attacker.get(f"/console/oidc/{B}/start", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False).headers["location"]
    clerk = client(sqlite_node)
    answer = clerk.get(back.removeprefix("https://testserver"), follow_redirects=False)
    assert answer.status_code == 401
    assert not any(c.startswith("flagledger_session=") for c in answer.headers.get_list("set-cookie"))
    assert idp.token_requests == 0, "refused before the code was spent"
    forged_state = re.sub(r"state=[^&]+", "state=forged", back.removeprefix("https://testserver"))
    assert attacker.get(forged_state, follow_redirects=False).status_code == 401


def test_only_enrolled_active_staff_of_that_agency_get_a_session(sqlite_node: Node, idp: Provider) -> None:
    """Threat: an insider at the provider (or a misconfigured directory). The provider vouches for identity
    only: someone it signs in who is not an active member of the agency here gets nothing."""
    idp.user = "mallory"
    assert _round_trip(client(sqlite_node), idp).status_code == 401
    sqlite_node.app.deactivate_staff(Actor(B, "admin"), "rev")
    idp.user = "rev"
    assert _round_trip(client(sqlite_node), idp).status_code == 401
    idp.user = None  # the person cancels at the provider
    assert _round_trip(client(sqlite_node), idp).status_code == 401
    assert [g for g in _grants(sqlite_node) if g[2] == "oidc"] == []


def test_an_agency_without_a_provider_has_no_such_sign_in(sqlite_node: Node, idp: Provider) -> None:
    """Threat: an administrator of another agency on the node. A provider configured for B signs nobody in at A."""
    http = client(sqlite_node)
    assert http.get(f"/console/oidc/{A}/start", follow_redirects=False).status_code == 404


def test_a_provider_must_be_https_unless_on_this_host(sqlite_node: Node) -> None:
    """Threat: the network. An issuer reached over plain HTTP could be answered by anyone on the path."""
    with pytest.raises(ValidationError, match="https"):
        OidcProvider(issuer="http://idp.city.example", client_id="flagledger")
    assert OidcProvider(issuer="https://idp.city.example/", client_id="x").issuer == "https://idp.city.example"
    sqlite_node.config.oidc = {"providers": {B: {"issuer": "https://idp.city.example", "client_id": "flagledger"}}}
    sqlite_node.config.save()
    assert NodeConfig.load(sqlite_node.config.data_dir).oidc == sqlite_node.config.oidc, "kept in config.json"
