"""At-rest AES-GCM with the key schedule built once, byte-compatible with ``eventsourcing.cryptography.AESCipher``.

The library's cipher builds a new ``AESGCM`` object for every event (about 2 µs each way); reusing one keeps
the same layout (nonce ‖ tag ‖ ciphertext), so rows written by either cipher are read by the other.
Serves the figures "signed append", "audit verify" and "projection rebuild".
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import Cipher

__all__ = ["ReusedAESCipher", "reuse_key_schedule"]


class ReusedAESCipher(Cipher):
    def __init__(self, key: bytes) -> None:  # not the library's (environment) signature: built from a key
        AESCipher.check_key_size(len(key))
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        res = self._aead.encrypt(nonce, plaintext, None)
        return nonce + res[-16:] + res[:-16]

    def decrypt(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) < 28:
            raise ValueError("Damaged cipher text: too short for nonce and tag")
        try:
            return self._aead.decrypt(ciphertext[:12], ciphertext[28:] + ciphertext[12:28], None)
        except InvalidTag as exc:
            raise ValueError("Invalid cipher tag") from exc


def reuse_key_schedule(cipher: Cipher | None) -> Cipher | None:
    """The library's AES cipher swapped for the reusing one; any other cipher unchanged."""
    if type(cipher) is AESCipher:
        return ReusedAESCipher(cipher.key)
    return cipher
