"""Console sign-in through an agency's own OpenID Connect provider (authorisation code flow with PKCE).

An agency that runs an identity provider (its directory's, or a prefecture's shared one) lets its staff sign in
to the console with it instead of pasting a token. The provider proves who the person is; the staff member must
still be enrolled and active at that agency here, and gets only the roles the ledger records for them. The
session is recorded like every other grant of access (``TokenGrant.Issued`` with ``via="oidc"``).

Configured per agency in the data directory's config (``oidc`` section, see docs/operations.md)::

    "oidc": {"providers": {"131016": {"issuer": "https://idp.city.example", "client_id": "flagledger",
                                      "client_secret_file": "/run/secrets/oidc", "staff_claim": "preferred_username"}}}

Checked on the way back, each refusal a plain sign-in failure (the reason goes to the log, never to the page):
the state (bound to this browser by an HMAC'd cookie, 10 minutes), the ID token's signature against the
provider's published keys, its issuer, audience, expiry and nonce, and the staff claim naming an active member.
An issuer must be https, except a loopback address (a provider on the same host, as in the tests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger.app import Actor
from ledger.domain.field_rules import STAFF
from ledger.errors import AuthError, FlagLedgerError, NotFoundError
from ledger.runtime.bootstrap import Node
from ledger.runtime.keystore import read_secret_file
from ledger.settings import Section, section_config

__all__ = ["OidcProvider", "OidcSettings", "begin", "finish"]

log = logging.getLogger("flagledger.api.oidc")

STATE_TTL = 600  # seconds between leaving for the provider and coming back
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")  # asymmetric only: a client secret must never verify a token
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class OidcProvider(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str
    client_id: str
    client_secret_file: str | None = None  # a confidential client's secret (a mounted file); PKCE either way
    staff_claim: str = "preferred_username"  # the ID-token claim holding the staff id at this agency
    scope: str = "openid profile"

    @field_validator("issuer")
    @classmethod
    def _https(cls, value: str) -> str:
        url = urllib.parse.urlsplit(value)
        if url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOOPBACK):
            raise ValueError("must be an https URL (plain http only for a provider on this host)")
        return value.rstrip("/")


class OidcSettings(Section):
    model_config = section_config("FLAGLEDGER_OIDC_")
    section: ClassVar[str] = "oidc"

    providers: dict[str, OidcProvider] = Field(default_factory=dict)


def _settings(node: Node) -> OidcSettings:
    return OidcSettings.load(node.config.oidc)


def providers(node: Node) -> dict[str, OidcProvider]:
    """The hosted agencies whose staff may sign in through a provider."""
    return {a: p for a, p in _settings(node).providers.items() if a in node.app.hosted}


def _provider(node: Node, agency: str) -> OidcProvider:
    found = providers(node).get(agency)
    if found is None:
        raise NotFoundError("no identity provider is configured for that agency on this node")
    return found


# -- the provider's documents (discovery, keys), fetched over the network ------------------------------------
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _get_json(url: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            value = json.loads(answer.read(1 << 20))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AuthError("the identity provider did not answer; try again or sign in with a token") from exc
    if not isinstance(value, dict):
        raise AuthError("the identity provider answered something unexpected")
    return value


def _discovery(provider: OidcProvider) -> dict[str, Any]:
    hit = _cache.get(provider.issuer)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    doc = _get_json(f"{provider.issuer}/.well-known/openid-configuration")
    if doc.get("issuer") != provider.issuer:
        raise AuthError("the identity provider's discovery document names another issuer")
    _cache[provider.issuer] = (time.monotonic() + 3600, doc)
    return doc


# -- the round trip ------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(node: Node, text: str) -> str:
    return hmac.new(node.keys.api_token_secret(), f"oidc\x00{text}".encode(), hashlib.sha256).hexdigest()


def begin(node: Node, agency: str, redirect_uri: str) -> tuple[str, str]:
    """Where to send the browser, and the cookie value binding this attempt to it."""
    provider = _provider(node, agency)
    doc = _discovery(provider)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    expires = int(time.time()) + STATE_TTL
    body = ".".join([agency, state, nonce, verifier, str(expires)])
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": provider.scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    return f"{doc['authorization_endpoint']}?{urllib.parse.urlencode(query)}", f"{body}.{_mac(node, body)}"


def finish(node: Node, agency: str, cookie: str | None, state: str, code: str, redirect_uri: str) -> Actor:
    """The staff member the provider vouches for, after every check; raises :class:`AuthError` otherwise."""
    parts = (cookie or "").split(".")
    if len(parts) != 6 or not hmac.compare_digest(_mac(node, ".".join(parts[:5])), parts[5]):
        raise AuthError("the sign-in did not start in this browser")
    started_for, expected_state, nonce, verifier, expires = parts[:5]
    if started_for != agency or not hmac.compare_digest(expected_state, state):
        raise AuthError("the sign-in answer does not belong to this attempt")
    if int(expires) < time.time():
        raise AuthError("the sign-in took too long; start again")
    provider = _provider(node, agency)
    doc = _discovery(provider)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": provider.client_id,
        "code_verifier": verifier,
    }
    if provider.client_secret_file:
        form["client_secret"] = read_secret_file(Path(provider.client_secret_file), f"{agency} OIDC client secret")
    tokens = _get_json(str(doc["token_endpoint"]), form)
    claims = _verified_claims(provider, doc, str(tokens.get("id_token", "")), nonce)
    staff = claims.get(provider.staff_claim)
    try:
        STAFF(provider.staff_claim, staff)
    except FlagLedgerError as exc:
        raise AuthError("the identity provider's answer names no staff id") from exc
    actor = Actor(agency, str(staff))
    try:
        node.app.staff(agency, actor.staff)
    except NotFoundError:
        raise AuthError("the identity provider vouches for someone not enrolled at this agency") from None
    return actor


def _verified_claims(provider: OidcProvider, doc: dict[str, Any], id_token: str, nonce: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(_get_json(str(doc["jwks_uri"])))  # type: ignore[arg-type]
    try:
        token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise AuthError("the identity provider's ID token does not verify") from exc
    claims = dict(token.claims)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:
        raise AuthError("the ID token was issued to another client")
    return claims
