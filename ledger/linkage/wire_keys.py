"""Copies on the wire (issue 22, docs/erasure.md): what a provider sends the portal about a person travels under a
per-subject, per-recipient *wire key*, so that broker retention never outlives an erasure.

**The inner layer.** A record's contents (``ledger.linkage.record_contents``) are encrypted under the wire key
*before* the provider seals them to the portal::

    DKW1 | ref (16) | nonce (12) | AES-256-GCM(wire key, contents, aad = "DKW1" | ref | record id)

The wire key is the provider's, for this person and this recipient, kept in its ``datakeys.sqlite`` wrapped by its
key-encryption key (``ledger.log.datakeys``) — never the person's local data key, which would open the
provider's own case notes in a copy of its log. The hub files the sealed bytes and cannot open either layer.

**The key message** (``subject_key``, provider → portal, sealed end to end and relayed by the hub unopened,
``ledger.hub.witness_relay``): the ref and the key, the key itself HPKE-sealed to the portal's current
*delivery key* (an X25519 key the portal rotates, ``ledger.portal.wire_keys``; its public half is published
beside the portal's sealing key: ``Directory.delivery``). It is sent once per key. It sits in the broker's
retention beside the records, sealed to the portal's static key; what keeps it from opening the records again
after an erasure is the delivery key: the portal destroys a period's private half once that period's key
messages are taken (forward secrecy), so a retained key message opens with no key anyone holds. A provider
with no delivery key published for the portal seals the key to the portal's static key (the weaker mode: the
retained key message then outlives an erasure until the topic's retention ends).

**The erasure** (``wire_erasure``, provider → portal, relayed the same way): the refs of the person's wire keys
the provider destroyed with the person's data keys. The portal destroys its copies of exactly those keys — only
those the same provider delivered — and records it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import Code, InputError, IntegrityError
from ledger.linkage.buckets import BUCKETS
from ledger.linkage.messages import Message
from ledger.linkage.names import check_event_id
from ledger.linkage.sealing import SUITE, public_from_hex, public_hex

__all__ = [
    "REFS_PER_MESSAGE",
    "STATIC",
    "WIRE_BUCKET",
    "WIRE_MAGIC",
    "SubjectKey",
    "WireErasure",
    "WireKeyMissing",
    "WireLookup",
    "delivery_entry",
    "delivery_of",
    "delivery_serial",
    "erasures_of",
    "is_wired",
    "open_key",
    "seal_key",
    "unwire",
    "wire",
]

WIRE_MAGIC = b"DKW1"
REF = 16
STATIC = "static"  # SubjectKey.delivery when the key was sealed to the portal's static sealing key
MAX_REFS = 64  # a person's wire keys at one provider: one per recipient, and one more after each key loss
# every key and erasure message is sealed to the portal in this one bucket, whatever it holds (docs/linkage.md,
# "Buckets"): its size tells the broker operator nothing of its kind, its delivery key or how many keys it names
WIRE_BUCKET = BUCKETS[0]
REFS_PER_MESSAGE = 16  # an erasure naming more goes as several, each in WIRE_BUCKET (16 refs: ~600 bytes)
_KEY_INFO = b"flagledger/linkage/wire-key/1\x00"


class WireKeyMissing(IntegrityError):
    """A payload under a wire key never delivered here (``sealed_message``): its ref and the sender who owes it,
    so the portal can ask for it again (``ledger.linkage.delivery_keys.WireKeyRequest``)."""

    code = Code.SEALED_MESSAGE

    def __init__(self, message: str, ref: bytes, sender: str) -> None:
        super().__init__(message)
        self.ref = ref
        self.sender = sender


class WireLookup(Protocol):
    """The recipient's wire keys (``ledger.portal.wire_keys.PortalWireKeys``)."""

    def key(self, ref: bytes, sender: str) -> bytes | None:
        """The key ``ref`` names if ``sender`` delivered it; None otherwise (destroyed, or never delivered)."""
        ...

    def erased(self, ref: bytes) -> bool: ...


def wire(ref: bytes, key: bytes, record_id: str, payload: bytes) -> bytes:
    """``payload`` under the wire key, bound to its ref and the record id (no record's contents pass for another's)."""
    nonce = os.urandom(12)
    return WIRE_MAGIC + ref + nonce + AESGCM(key).encrypt(nonce, payload, WIRE_MAGIC + ref + record_id.encode())


def is_wired(payload: bytes) -> bool:
    return payload[:4] == WIRE_MAGIC


def unwire(blob: bytes, record_id: str, sender: str, wires: WireLookup | None) -> bytes:
    """The payload ``wire`` made under ``sender``'s key; ``erased`` when that key was destroyed here,
    ``sealed_message`` when it was never delivered (or was another sender's)."""
    if len(blob) < 4 + REF + 12 + 16 or not is_wired(blob):
        raise InputError("not a payload under a wire key", code=Code.MALFORMED)
    ref, nonce, body = blob[4 : 4 + REF], blob[4 + REF : 16 + REF], blob[16 + REF :]
    key = None if wires is None else wires.key(ref, sender)
    if key is None:
        if wires is not None and wires.erased(ref):
            raise IntegrityError("the wire key of this payload was destroyed here (erased)", code=Code.ERASED)
        raise WireKeyMissing("the wire key of this payload was never delivered here", ref, sender)
    try:
        return AESGCM(key).decrypt(nonce, body, WIRE_MAGIC + ref + record_id.encode())
    except InvalidTag as exc:
        raise IntegrityError("a payload does not open under its wire key", code=Code.SEALED_MESSAGE) from exc


def seal_key(delivery: X25519PublicKey, ref: bytes, key: bytes) -> str:
    """The wire key HPKE-sealed to the portal's delivery key (its ref as the context), as hex."""
    return SUITE.encrypt(key, delivery, info=_KEY_INFO + ref).hex()


def open_key(private: X25519PrivateKey, ref: bytes, sealed_hex: str) -> bytes:
    try:
        key = SUITE.decrypt(bytes.fromhex(sealed_hex), private, info=_KEY_INFO + ref)
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError("a wire key does not open under this delivery key", code=Code.SEALED_MESSAGE) from exc
    if len(key) != 32:
        raise IntegrityError("a wire key is 32 bytes", code=Code.SEALED_MESSAGE)
    return key


def delivery_entry(key_id: str, public: X25519PublicKey, serial: int = 0) -> str:
    """The portal's delivery key as its directory entry publishes it: ``KEY_ID:X25519 public hex``, and
    ``:SERIAL`` (its rotation counter) when known — an agency then refuses any announcement of an older key
    (``ledger.linkage.delivery_keys``)."""
    entry = f"{key_id}:{public_hex(public)}"
    return f"{entry}:{serial}" if serial else entry


def _parts(text: str) -> tuple[str, str, int]:
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) not in (2, 3):
        raise InputError("delivery_hex is KEY_ID:PUBLIC[:SERIAL]", code=Code.MALFORMED, field="delivery_hex")
    serial = 0
    if len(parts) == 3:
        if not parts[2].isdigit() or len(parts[2]) > 15 or parts[2].startswith("0"):
            raise InputError("a delivery key's serial is a positive number", code=Code.MALFORMED, field="delivery_hex")
        serial = int(parts[2])
    return parts[0], parts[1], serial


def delivery_of(text: str) -> tuple[str, X25519PublicKey]:
    """(key id, public half) of a published delivery key; ``malformed`` otherwise."""
    key_id, public, _ = _parts(text)
    _ref(key_id, "delivery_hex")
    return key_id, public_from_hex(public)


def delivery_serial(text: str) -> int:
    """The serial a published delivery key names (0: an entry exported before serials)."""
    return _parts(text)[2]


def _ref(value: str, what: str = "ref") -> bytes:
    if not isinstance(value, str) or len(value) != 2 * REF:
        raise InputError(f"{what} must be {2 * REF} hex digits", code=Code.MALFORMED, field=what)
    check_event_id(value)  # 32 lower-case hex digits
    return bytes.fromhex(value)


@dataclass(frozen=True)
class SubjectKey(Message):
    """A provider's wire key for one person, to the portal: the ref, which delivery key sealed it, the sealed key."""

    kind: ClassVar[str] = "subject_key"
    ref: str
    delivery: str  # the delivery key's id (hex), or STATIC
    key: str  # hex of the HPKE-sealed key (32 + 32 + 16 bytes)

    def check(self) -> None:
        _ref(self.ref)
        if self.delivery != STATIC:
            _ref(self.delivery, "delivery")
        if not isinstance(self.key, str) or len(self.key) != 160:
            raise InputError("a sealed wire key is 80 bytes of hex", code=Code.MALFORMED, field="key")
        bytes.fromhex(self.key)

    def raw_ref(self) -> bytes:
        return bytes.fromhex(self.ref)


@dataclass(frozen=True)
class WireErasure(Message):
    """The provider destroyed these wire keys (with the person's data keys): the portal destroys its copies."""

    kind: ClassVar[str] = "wire_erasure"
    erasure_id: str
    refs: str  # the refs, hex, separated by single spaces

    def check(self) -> None:
        check_event_id(self.erasure_id)
        refs = self.refs.split(" ") if isinstance(self.refs, str) else []
        if not 1 <= len(refs) <= MAX_REFS:
            raise InputError(f"a wire erasure names 1-{MAX_REFS} refs", code=Code.MALFORMED, field="refs")
        for ref in refs:
            _ref(ref)

    def raw_refs(self) -> list[bytes]:
        return [bytes.fromhex(r) for r in self.refs.split(" ")]


def erasures_of(erasure_id: str, refs: list[str]) -> list[WireErasure]:
    """The ``wire_erasure`` messages naming ``refs``, ``REFS_PER_MESSAGE`` at most each, so each fits
    ``WIRE_BUCKET`` (the portal destroys key by key: one erasure in several messages is the same erasure)."""
    return [
        WireErasure(erasure_id, " ".join(refs[i : i + REFS_PER_MESSAGE])) for i in range(0, len(refs), REFS_PER_MESSAGE)
    ]
