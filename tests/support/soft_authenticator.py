"""A software WebAuthn authenticator for tests without a browser: a P-256 key, a credential id, a signature
counter, and the two ceremonies (``create`` with "none" attestation, ``get``) producing what a browser would
send. Real Chromium with its virtual authenticator is in tests/e2e/test_console_security_key_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, options: dict[str, Any], origin: str) -> bytes:
        body = {"type": kind, "challenge": options["challenge"], "origin": origin, "crossOrigin": False}
        return json.dumps(body).encode()

    def create(self, options: dict[str, Any], origin: str) -> dict[str, Any]:
        client_data = self._client_data("webauthn.create", options, origin)
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + self._cose()
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        auth_data = rp_hash + bytes([0x41]) + self.counter.to_bytes(4, "big") + attested  # user present, attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation)},
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], origin: str, *, counter: int | None = None) -> dict[str, Any]:
        self.counter = self.counter + 1 if counter is None else counter
        client_data = self._client_data("webauthn.get", options, origin)
        auth_data = hashlib.sha256(options["rpId"].encode()).digest() + bytes([0x01]) + self.counter.to_bytes(4, "big")
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": None,
            },
            "clientExtensionResults": {},
        }
