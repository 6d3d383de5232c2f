"""The portal's delivery keys on the wire (issue 22, docs/erasure.md "copies on the wire"): each new delivery key is
announced to the agencies, and a wire key the portal cannot open is asked for again.

**The announcement** (``delivery_key``): the portal's new delivery key (``KEY_ID:X25519 public``, as its directory
entry publishes it), its serial — the key file's rotation counter, one more at each rotation — and when it was
made, *signed by the portal's signing key* (Ed25519, the key each agency holds in its ``linkage.portal`` entry).
The portal sends it to the hub, the hub sends it on to every agency; the signature is the portal's, so the hub
(or anyone on the broker) can withhold it but not forge it, nor change the key. An agency takes one only with a
serial above every serial it took or was configured with: an older one replayed — by the broker operator, a
compromised hub, a peer handing one back — is refused (``delivery_replayed``) and parked; one with the same serial
and another key is refused too (the portal never signs two); the notice of the key held again is no news.
See ``consumers.linkage_delivery``.

**The key request** (``wire_key_request``, portal → hub → the provider): the ref of a wire key the portal cannot
open a record with — its key message parked, or taken after the delivery key it was sealed to was retired —
with the portal's newest announcement, so a provider holding an older delivery key seals the re-sent key to the
newest. The provider sends it again (``subject_key``, sealed end to end to the portal) only while it holds the
key: an erased person's wire keys are destroyed with their data keys, and nothing brings them back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ledger.errors import Code, InputError, SignatureError
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import PORTAL, check_party
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.wire_keys import delivery_of
from ledger.log.signing import Signer

__all__ = ["DeliveryKeyNotice", "WireKeyRequest", "announced"]

_SIGNED = b"flagledger/linkage/delivery-key/1\x00"
MAX_SERIAL = 2**53  # JSON-safe


def announced(serial: int, delivery: str, made_at: str) -> bytes:
    """The bytes the portal signs: the domain, then the serial, the key and its time, as canonical JSON."""
    return _SIGNED + json.dumps([serial, delivery, made_at], separators=(",", ":")).encode()


@dataclass(frozen=True)
class DeliveryKeyNotice(Message):
    """The portal's new delivery key, signed by the portal."""

    kind: ClassVar[str] = "delivery_key"
    serial: int
    delivery: str  # KEY_ID:X25519 public hex (ledger.linkage.wire_keys.delivery_entry)
    made_at: str  # ISO 8601, when the portal made the key
    key_id: str  # the portal's signing key
    signature: str  # hex, over announced(serial, delivery, made_at)

    def check(self) -> None:
        if not isinstance(self.serial, int) or isinstance(self.serial, bool) or not 1 <= self.serial < MAX_SERIAL:
            raise InputError("a delivery key's serial is a positive number", code=Code.MALFORMED, field="serial")
        delivery_of(self.delivery)
        if not isinstance(self.made_at, str) or not 10 <= len(self.made_at) <= 40:
            raise InputError("made_at is an ISO 8601 time", code=Code.MALFORMED, field="made_at")
        if not isinstance(self.key_id, str) or not 1 <= len(self.key_id) <= 100:
            raise InputError("key_id names the portal's signing key", code=Code.MALFORMED, field="key_id")
        try:
            raw = bytes.fromhex(self.signature) if isinstance(self.signature, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 64:
            raise InputError("a delivery key's signature is 64 bytes of hex", code=Code.MALFORMED, field="signature")

    @classmethod
    def of(cls, signer: Signer, serial: int, delivery: str, made_at: str) -> DeliveryKeyNotice:
        if signer.agency != PORTAL:
            raise InputError("only the portal announces a delivery key", code=Code.WRONG_AGENCY)
        signature = signer.sign(announced(serial, delivery, made_at)).hex()
        return cls(serial, delivery, made_at, signer.key_id, signature)

    def verify(self, keys: SenderKeys) -> tuple[str, X25519PublicKey]:
        """(key id, public half) of the key announced, if the portal's registered key signed it;
        ``bad_signature`` otherwise — whoever carried it."""
        self.check()
        try:
            keys(PORTAL, self.key_id).verify(
                bytes.fromhex(self.signature), announced(self.serial, self.delivery, self.made_at)
            )
        except InvalidSignature:
            raise SignatureError("a delivery key not signed by the portal", code=Code.BAD_SIGNATURE) from None
        return delivery_of(self.delivery)


@dataclass(frozen=True)
class WireKeyRequest(Message):
    """The portal asks ``provider`` (through the hub) to send again the wire key ``ref`` names."""

    kind: ClassVar[str] = "wire_key_request"
    provider: str
    ref: str  # 32 hex digits
    notice: str  # the portal's newest DeliveryKeyNotice, encoded ("": none): the provider seals the key to it

    def check(self) -> None:
        check_party(self.provider, "provider")
        if self.provider == PORTAL:
            raise InputError("a wire key is asked of a provider", code=Code.MALFORMED, field="provider")
        if not isinstance(self.ref, str) or len(self.ref) != 32:
            raise InputError("ref must be 32 hex digits", code=Code.MALFORMED, field="ref")
        try:
            bytes.fromhex(self.ref)
        except ValueError:
            raise InputError("ref must be 32 hex digits", code=Code.MALFORMED, field="ref") from None
        if not isinstance(self.notice, str) or len(self.notice) > 1024:
            raise InputError("notice is the portal's delivery key, encoded", code=Code.MALFORMED, field="notice")
        self.delivery_notice()

    def delivery_notice(self) -> DeliveryKeyNotice | None:
        return decode(DeliveryKeyNotice, self.notice.encode()) if self.notice else None

    def raw_ref(self) -> bytes:
        return bytes.fromhex(self.ref)
