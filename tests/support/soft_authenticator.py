"""A software WebAuthn authenticator for tests without a browser: a P-256 (ES256) or Ed25519 (EdDSA) key, a
credential id, a signature counter, and the two ceremonies (``create`` with "none" attestation, ``get``)
producing what a browser would send; ``sign_statement`` makes the per-act assertion the console asks for
(challenge = SHA-256 of the act's statement), with knobs to make it wrong in each way a forger might. Real
Chromium with its virtual authenticator is in tests/e2e/test_console_security_key_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else Ed25519PrivateKey.generate()
        )
        self.credential_id = os.urandom(32)
        self.counter = 0

    def _cose(self) -> bytes:
        if isinstance(self.key, Ed25519PrivateKey):
            raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    @property
    def cose_key(self) -> str:
        return b64(self._cose())

    @property
    def credential(self) -> str:
        return b64(self.credential_id)

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def sign_statement(
        self,
        statement: bytes,
        rp_id: str = "testserver",
        origin: str = "https://testserver",
        *,
        flags: int = 0x05,
        kind: str = "webauthn.get",
    ) -> dict[str, str]:
        """The per-act assertion, as the console passes it on: authenticator and client data (base64url) and
        the signature (hex). ``flags``: 0x01 user present, 0x04 user verified."""
        self.counter += 1
        challenge = b64(hashlib.sha256(statement).digest())
        client_data = json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False})
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + self.counter.to_bytes(4, "big")
        signature = self._sign(auth_data + hashlib.sha256(client_data.encode()).digest())
        return {
            "authenticator_data": b64(auth_data),
            "client_data": b64(client_data.encode()),
            "signature": signature.hex(),
        }

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
        signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
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
