"""The payload of an event encrypted under its person's data key (header ``enc`` ``"dk1"``, issue 22).

Layout: ``b"DK1\\0" | 16 ref | 12 nonce | AES-256-GCM ciphertext and tag``, with the stream id and version as
associated data (a ciphertext moved to another event does not open). The header's digest (``commit``
``sha256``) covers these bytes, not the plaintext: the signature, the stream's hash chain and the Merkle leaf
verify with or without the key, and the digest is *salted* — by the data key and a fresh nonce — so once the key
is destroyed a guessed payload cannot be confirmed against the log (docs/erasure.md).

Events written before issue 22 keep ``enc`` ``"json"`` and read as before.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import Code, IntegrityError

__all__ = ["ENC_DK1", "MAGIC_DK1", "ErasedPayload", "open_payload", "ref_of", "seal_payload"]

ENC_DK1 = "dk1"
MAGIC_DK1 = b"DK1\x00"
_REF = 16
_HEAD = len(MAGIC_DK1) + _REF + 12


class ErasedPayload(IntegrityError):
    """The payload's data key was destroyed (or is not held here): the event is erased, its envelope intact."""

    def __init__(self, ref: bytes) -> None:
        super().__init__(f"the payload's data key {ref.hex()} is erased", code=Code.ERASED)
        self.ref = ref


def _aad(stream: str, version: int) -> bytes:
    return f"{stream}/{version}".encode()


def seal_payload(ref: bytes, key: bytes, plaintext: bytes, stream: str, version: int) -> bytes:
    nonce = os.urandom(12)
    return MAGIC_DK1 + ref + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(stream, version))


def ref_of(blob: bytes) -> bytes:
    if len(blob) < _HEAD + 16 or blob[:4] != MAGIC_DK1:
        raise IntegrityError("malformed per-subject payload", code=Code.MALFORMED)
    return blob[4 : 4 + _REF]


def open_payload(blob: bytes, key: bytes | None, stream: str, version: int) -> bytes:
    """The plaintext; :class:`ErasedPayload` when ``key`` is None (destroyed or never held)."""
    ref = ref_of(blob)
    if key is None:
        raise ErasedPayload(ref)
    try:
        return AESGCM(key).decrypt(blob[4 + _REF : _HEAD], blob[_HEAD:], _aad(stream, version))
    except InvalidTag as exc:
        raise IntegrityError("a per-subject payload does not open under its data key", code=Code.MALFORMED) from exc
