"""A WebAuthn assertion as a staff member's signature on one act (docs/staff-signing.md, "Security keys").

The console asks the person's security key for an assertion whose challenge is the SHA-256 of the act's
statement (:func:`ledger.domain.staff_acts.act_statement`); every reader — the app, a peer's ingest, ``audit
verify`` — checks it here against the COSE public key certified for that person in the roster. Verified with
``cryptography`` alone (no WebAuthn library, no relying-party state): what the authenticator signed is
``authenticatorData || SHA-256(clientDataJSON)``, and the client data names the challenge, so the signature
binds the statement, the relying party (its id's hash) and the person's presence at the key.

Not checked here: the origin (a peer cannot know the console's address; the rpIdHash binds the relying party,
and the browser only asserts for an origin under that id) and the signature counter (kept by the local node).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["ALGORITHMS", "b64url", "challenge_for", "check_assertion", "cose_algorithm", "unb64url"]

ES256, EDDSA, RS256 = -7, -8, -257
ALGORITHMS = {ES256: "ES256", EDDSA: "EdDSA", RS256: "RS256"}  # what browsers' authenticators make
FLAG_UP = 0x01  # user present: someone touched the key for this act
MAX_COSE = 1536


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not text.replace("-", "").replace("_", "").isalnum():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def challenge_for(statement: bytes) -> bytes:
    """The challenge the console asks the key to sign for an act: the statement's SHA-256."""
    return hashlib.sha256(statement).digest()


# -- COSE keys: a small strict CBOR reader for the one structure we read (a map of ints to ints/bytes) ------
def _cbor(data: bytes, at: int, depth: int = 0) -> tuple[Any, int]:
    if depth > 2 or at >= len(data):
        raise ValueError("not a COSE key")
    major, info = data[at] >> 5, data[at] & 0x1F
    at += 1
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if at + size > len(data):
            raise ValueError("truncated CBOR")
        n, at = int.from_bytes(data[at : at + size], "big"), at + size
    else:
        raise ValueError("indefinite or reserved CBOR lengths are not read")
    if major == 0:
        return n, at
    if major == 1:
        return -1 - n, at
    if major in (2, 3):
        if at + n > len(data):
            raise ValueError("truncated CBOR")
        raw = data[at : at + n]
        return (raw if major == 2 else raw.decode()), at + n
    if major == 5:
        out: dict[Any, Any] = {}
        for _ in range(n):
            k, at = _cbor(data, at, depth + 1)
            v, at = _cbor(data, at, depth + 1)
            if not isinstance(k, int) or k in out:
                raise ValueError("a COSE key's labels are distinct integers")
            out[k] = v
        return out, at
    raise ValueError("not a COSE key")


PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey | rsa.RSAPublicKey


def _public_key(cose: bytes) -> tuple[int, PublicKey]:
    if len(cose) > MAX_COSE:
        raise ValueError("a COSE key too long")
    key, end = _cbor(cose, 0)
    if not isinstance(key, dict) or end != len(cose):
        raise ValueError("not a COSE key")
    kty, alg = key.get(1), key.get(3)
    if alg == ES256 and kty == 2 and key.get(-1) == 1:
        x, y = key.get(-2), key.get(-3)
        if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
            raise ValueError("an ES256 key has 32-byte coordinates")
        return alg, ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    if alg == EDDSA and kty == 1 and key.get(-1) == 6 and isinstance(key.get(-2), bytes):
        return alg, Ed25519PublicKey.from_public_bytes(key[-2])
    if alg == RS256 and kty == 3 and isinstance(key.get(-1), bytes) and isinstance(key.get(-2), bytes):
        n, e = int.from_bytes(key[-1], "big"), int.from_bytes(key[-2], "big")
        if n.bit_length() < 2048:
            raise ValueError("an RSA key shorter than 2048 bits")
        return alg, rsa.RSAPublicNumbers(e, n).public_key()
    raise ValueError("a COSE key of an algorithm not accepted (ES256, EdDSA, RS256)")


def cose_algorithm(cose_b64: str) -> str:
    """The accepted algorithm of a base64url COSE public key; ValueError for anything else."""
    return ALGORITHMS[_public_key(unb64url(cose_b64))[0]]


def _verify(alg: int, key: PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        if alg == ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        elif alg == EDDSA and isinstance(key, Ed25519PublicKey):
            key.verify(signature, signed)
        elif alg == RS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def check_assertion(
    cose_b64: str,
    rp_id_hash_hex: str,
    statement: bytes,
    authenticator_data: str,
    client_data: str,
    signature: str,
) -> str | None:
    """Why this assertion is not the certified key's signature on ``statement`` (None: it is).

    The client data is a ``webauthn.get`` whose challenge is ``base64url(SHA-256(statement))``; the
    authenticator data names the certified relying party (``rpIdHash``) and has the user-present flag; the
    signature over ``authenticatorData || SHA-256(clientDataJSON)`` verifies with the certified COSE key.
    ``authenticator_data`` and ``client_data`` are base64url, as the browser gave them; ``signature`` hex."""
    try:
        auth_data, client_raw = unb64url(authenticator_data), unb64url(client_data)
        sig = bytes.fromhex(signature)
        alg, key = _public_key(unb64url(cose_b64))
        client = json.loads(client_raw.decode())
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        return "a malformed WebAuthn assertion"
    if not isinstance(client, dict) or client.get("type") != "webauthn.get":
        return "the client data is not a WebAuthn assertion (webauthn.get)"
    if client.get("challenge") != b64url(challenge_for(statement)):
        return "the assertion was made for another statement"
    if client.get("crossOrigin") is True:
        return "the assertion was made in a cross-origin frame"
    if len(auth_data) < 37:
        return "a malformed WebAuthn assertion"
    if auth_data[:32].hex() != rp_id_hash_hex:
        return "the assertion was made for another relying party (rpIdHash)"
    if not auth_data[32] & FLAG_UP:
        return "the key was not touched (user-present flag off)"
    if not _verify(alg, key, sig, auth_data + hashlib.sha256(client_raw).digest()):
        return "the security key's signature does not verify"
    return None
