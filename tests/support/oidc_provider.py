"""A small OpenID Connect provider for tests: discovery, an authorisation endpoint that signs in whoever the test
says is at the keyboard, a token endpoint that checks the code, redirect URI, client and PKCE verifier, and the
published keys. Its ``misbehave`` switches let a test play a provider (or someone in the middle) that answers
with a token for another audience, another nonce, an expired one, or one signed by a key it does not publish.

Runs on a loopback port in a thread (stdlib ``http.server``), so the node under test fetches from it for real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class Provider:
    issuer: str = ""
    client_id: str = "flagledger"
    user: str | None = None  # who signs in at the provider's page
    misbehave: str = ""  # "", "audience", "nonce", "expired", "foreign_key", "issuer"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0

    def id_token(self, request: dict[str, str]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer if self.misbehave != "issuer" else self.issuer + "/other",
            "aud": self.client_id if self.misbehave != "audience" else "someone-else",
            "sub": f"sub-{request['user']}",
            "preferred_username": request["user"],
            "nonce": request["nonce"] if self.misbehave != "nonce" else "a-nonce-from-another-attempt",
            "iat": now,
            "exp": now + 300 if self.misbehave != "expired" else now - 600,
        }
        key = self.key
        if self.misbehave == "foreign_key":
            key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})  # same kid, not the published key
        return jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _json(self, value: Any, status: int = 200) -> None:
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/.well-known/openid-configuration":
                self._json(
                    {
                        "issuer": provider.issuer,
                        "authorization_endpoint": f"{provider.issuer}/authorize",
                        "token_endpoint": f"{provider.issuer}/token",
                        "jwks_uri": f"{provider.issuer}/jwks",
                    }
                )
            elif url.path == "/jwks":
                self._json(KeySet([provider.key]).as_dict(private=False))
            elif url.path == "/authorize":
                if query.get("client_id") != provider.client_id or query.get("code_challenge_method") != "S256":
                    self._json({"error": "invalid_request"}, 400)
                    return
                if provider.user is None:
                    target = f"{query['redirect_uri']}?error=access_denied&state={query['state']}"
                else:
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {**query, "user": provider.user}
                    target = f"{query['redirect_uri']}?code={code}&state={urllib.parse.quote(query['state'])}"
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            provider.token_requests += 1
            request = provider.codes.pop(form.get("code", ""), None)  # a code is good once
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if (
                request is None
                or form.get("redirect_uri") != request["redirect_uri"]
                or form.get("client_id") != provider.client_id
                or challenge != request["code_challenge"]
            ):
                self._json({"error": "invalid_grant"}, 400)
                return
            self._json({"access_token": "unused", "token_type": "Bearer", "id_token": provider.id_token(request)})

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
