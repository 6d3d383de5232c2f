"""Sealed messages: signed by their sender, sealed to their recipient, padded to a bucket.

One fixed suite, never negotiated: HPKE base mode (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
AES-256-GCM, the recipient's X25519 key; the sender's Ed25519 node key signs inside the seal.

On the wire::

    "FLS1" | u16 header length | header | HPKE encapsulated key (32) | AES-256-GCM(padded inner) (bucket + 16)
    header = field(sender) | field(recipient) | field(event id)            field(x) = u16 length | UTF-8
    inner  = field(kind) | field(key id) | signature (64) | u32 payload length | payload | zeros to the bucket

The header is all a broker sees: who sends, to whom (the topic says it anyway) and a fresh random id per hop.
It is HPKE's ``info``, mixed into the key schedule, so a message whose header was changed does not open (the
public API of ``cryptography``'s HPKE takes ``info``, not a separate AAD; for one-shot sealing both bind the
same way). The kind stays inside the seal: a kind like "consultation for the holder" on the wire would tell the
operator, and through counts a peer, that an agency protects someone. The signature covers the version,
header, kind, key id and payload digest, so a recipient (the hub included) that re-seals a signed message to
someone else or under another kind is refused by the next recipient.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from ledger.errors import Code, InputError, IntegrityError, SignatureError
from ledger.linkage.buckets import BUCKETS, pad, unpad
from ledger.linkage.names import check_event_id, check_kind, check_party
from ledger.log.signing import KeyRing, Signer

__all__ = [
    "MAGIC",
    "SUITE",
    "Header",
    "Opened",
    "SenderKeys",
    "bucket_of",
    "new_sealing_key",
    "public_from_hex",
    "public_hex",
    "read_header",
    "ring_keys",
    "seal",
    "sealing_key_from_hex",
    "unseal",
]

MAGIC = b"FLS1"  # flagledger sealed message, format 1: the suite and layout above; a new one gets a new magic
SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_ENC = KEM.X25519.enc_length()
_TAG = 16
_SIG = 64
_INFO = b"flagledger/linkage/sealed/1\x00"
_SIGNED = b"flagledger/linkage/signature/1\x00"

# who signed: the sender's registered Ed25519 key for (sender, key id), or UntrustedKeyError
SenderKeys = Callable[[str, str], Ed25519PublicKey]


@dataclass(frozen=True)
class Header:
    """The routing header, in the clear."""

    sender: str
    recipient: str
    event_id: str

    def encode(self) -> bytes:
        return _field(self.sender) + _field(self.recipient) + _field(self.event_id)


@dataclass(frozen=True)
class Opened:
    """A message that opened, whose signature verified and whose header names the one who opened it."""

    sender: str
    recipient: str
    event_id: str
    kind: str
    key_id: str
    payload: bytes


def _field(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def _take(data: bytes, at: int, what: str) -> tuple[str, int]:
    if at + 2 > len(data):
        raise IntegrityError(f"a sealed message ends inside its {what}", code=Code.MALFORMED)
    (size,) = struct.unpack_from(">H", data, at)
    end = at + 2 + size
    if end > len(data):
        raise IntegrityError(f"a sealed message ends inside its {what}", code=Code.MALFORMED)
    try:
        return data[at + 2 : end].decode(), end
    except UnicodeDecodeError:
        raise IntegrityError(f"a sealed message's {what} is not UTF-8", code=Code.MALFORMED) from None


def _signed_message(header: Header, kind: str, key_id: str, payload: bytes) -> bytes:
    return _SIGNED + MAGIC + header.encode() + _field(kind) + _field(key_id) + hashlib.sha256(payload).digest()


def new_sealing_key() -> tuple[str, X25519PrivateKey]:
    """A party's new X25519 sealing key: its private half as 64 hex digits (a key store's text secret) and
    the key."""
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return raw.hex(), key


def sealing_key_from_hex(value: str) -> X25519PrivateKey:
    try:
        return X25519PrivateKey.from_private_bytes(bytes.fromhex(value))
    except ValueError:
        raise InputError("malformed X25519 private key (64 hex digits expected)", code=Code.MALFORMED) from None


def public_hex(key: X25519PublicKey) -> str:
    """A recipient's sealing key as it is published (64 hex digits), for the key registry."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def public_from_hex(value: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(bytes.fromhex(value))
    except ValueError:
        raise InputError("malformed X25519 public key (64 hex digits expected)", code=Code.MALFORMED) from None


def ring_keys(ring: KeyRing, at: datetime) -> SenderKeys:
    """Sender keys from a node's key registry: the key must be the sender's and valid (not revoked) at ``at``."""
    return lambda sender, key_id: ring.check_key(sender, key_id, at)


def seal(
    signer: Signer,
    recipient_key: X25519PublicKey,
    recipient: str,
    event_id: str,
    kind: str,
    payload: bytes,
    at_least: int = 0,
) -> bytes:
    """The sealed message from ``signer.agency`` (the sender: an agency code, ``hub`` or ``portal``) to
    ``recipient``; ``at_least``: the smallest bucket to pad to (answers use ``ANSWER_SIZE``)."""
    header = Header(check_party(signer.agency, "sender"), check_party(recipient, "recipient"), check_event_id(event_id))
    check_kind(kind)
    signature = signer.sign(_signed_message(header, kind, signer.key_id, payload))
    inner = _field(kind) + _field(signer.key_id) + signature + struct.pack(">I", len(payload)) + payload
    head = header.encode()
    sealed = SUITE.encrypt(pad(inner, at_least), recipient_key, info=_INFO + MAGIC + head)
    return MAGIC + struct.pack(">H", len(head)) + head + sealed


def _split(message: bytes) -> tuple[Header, bytes, bytes]:
    """The header, its bytes and the HPKE ciphertext; malformed framing refused before any key is used."""
    if not isinstance(message, bytes | bytearray) or message[:4] != MAGIC:
        raise IntegrityError("not a sealed linkage message (no FLS1 magic)", code=Code.MALFORMED)
    message = bytes(message)
    if len(message) < 6:
        raise IntegrityError("a sealed message ends inside its header", code=Code.MALFORMED)
    (size,) = struct.unpack_from(">H", message, 4)
    head = message[6 : 6 + size]
    if len(head) != size:
        raise IntegrityError("a sealed message ends inside its header", code=Code.MALFORMED)
    sender, at = _take(head, 0, "sender")
    recipient, at = _take(head, at, "recipient")
    event_id, at = _take(head, at, "event id")
    if at != size:
        raise IntegrityError("a sealed message's header has trailing bytes", code=Code.MALFORMED)
    try:
        header = Header(check_party(sender, "sender"), check_party(recipient, "recipient"), check_event_id(event_id))
    except InputError as exc:
        raise IntegrityError(f"a sealed message's header is malformed: {exc}", code=Code.MALFORMED) from None
    sealed = message[6 + size :]
    if len(sealed) - _ENC - _TAG not in BUCKETS:
        raise IntegrityError(f"a sealed message of {len(message)} bytes has no bucket's size", code=Code.MALFORMED)
    return header, head, sealed


def read_header(message: bytes) -> Header:
    """The routing header, without opening anything: what a relay or the broker operator can read."""
    return _split(message)[0]


def bucket_of(message: bytes) -> int:
    """The bucket a sealed message was padded to, without opening it (what its size tells the broker operator)."""
    return len(_split(message)[2]) - _ENC - _TAG


def unseal(recipient_key: X25519PrivateKey, recipient: str, message: bytes, sender_keys: SenderKeys) -> Opened:
    """Open a message addressed to ``recipient`` with its private sealing key; check the signature under the
    sender's registered key. IntegrityError (code ``malformed``, ``misaddressed``, ``sealed_message``),
    UntrustedKeyError or SignatureError otherwise; nothing of an unverified payload is returned."""
    header, head, sealed = _split(message)
    if header.recipient != recipient:
        raise IntegrityError(
            f"a sealed message for {header.recipient} reached {recipient}: refused", code=Code.MISADDRESSED
        )
    try:
        padded = SUITE.decrypt(sealed, recipient_key, info=_INFO + MAGIC + head)
    except InvalidTag:
        raise IntegrityError(
            f"a sealed message from {header.sender} does not open with {recipient}'s key: sealed to another "
            "recipient, or its header was changed on the way",
            code=Code.SEALED_MESSAGE,
        ) from None
    kind, at = _take(padded, 0, "kind")
    key_id, at = _take(padded, at, "key id")
    if at + _SIG + 4 > len(padded):
        raise IntegrityError("a sealed message ends inside its signature", code=Code.SEALED_MESSAGE)
    signature = padded[at : at + _SIG]
    (size,) = struct.unpack_from(">I", padded, at + _SIG)
    start = at + _SIG + 4
    payload = unpad(padded, start + size)[start:]
    try:
        check_kind(kind)
    except InputError as exc:
        raise IntegrityError(f"a sealed message's kind is malformed: {exc}", code=Code.SEALED_MESSAGE) from None
    public = sender_keys(header.sender, key_id)
    try:
        public.verify(signature, _signed_message(header, kind, key_id, payload))
    except InvalidSignature:
        raise SignatureError(
            f"the signature of a sealed message from {header.sender} does not verify under its key {key_id}: "
            "forged, or re-sealed to another recipient or under another kind"
        ) from None
    return Opened(header.sender, header.recipient, header.event_id, kind, key_id, payload)
