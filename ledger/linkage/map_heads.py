"""What the hub signs about its flag map: map heads and routing decisions (issue #20).

* A **map head** commits, under the hub's Ed25519 key, to the hub's state at one number of its sequence: the
  size and root of the hub's log (RFC 6962, :mod:`ledger.merkle`), the root of its flag map
  (:mod:`ledger.linkage.flag_map`), the sequence number and the hub's time (shown, compared by nobody)::

      "flagledger/map-head/2" 0x00 | u64 seq | u64 log size | log root (32) | map root (32)
                                   | field(time) | field(key id) | u64 index | prev (32)

  ``index`` counts the hub's heads (0, 1, 2, …: one more than the head before) and ``prev`` is the digest of the
  head before (32 zero bytes for the first): the heads are one chain, so a party that holds head *i* and is shown
  head *i + 2* knows it was not shown *i + 1*, and a head *i + 1* naming another predecessor than the *i* it
  holds proves, with the hub's two signatures alone, that the hub signed two heads numbered *i* — a story told
  under one number to some parties and another under the next to others is no longer invisible.

* A **routing decision** is the hub's word to one provider about one request: answer automatically or hold it
  for staff, about the person whose map key is given, citing the head (its sequence and body digest) the
  provider checks the person's leaf against::

      "flagledger/routing/1" 0x00 | field(request) | field(provider) | person key (32) | field(action)
                                  | u64 head seq | head digest (32) | field(key id)

Both are signed whole, so either one, with the map proof, is evidence a third party can check again with the
hub's public key alone. ``field(x) = u16 length | UTF-8 of x``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import Code, InputError, SignatureError
from ledger.linkage.names import check_event_id, check_party
from ledger.log.signing import Signer

__all__ = ["AUTO", "NO_PREV", "STAFF", "Action", "MapHead", "RoutingDecision", "decide", "sign_head"]

_HEAD = b"flagledger/map-head/2\x00"
NO_PREV: Final = bytes(32)  # the first head's predecessor
_ROUTING = b"flagledger/routing/1\x00"
AUTO: Final = "auto"
STAFF: Final = "staff"
Action = Literal["auto", "staff"]


def _field(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise InputError("a signed field is at most 65535 bytes", code=Code.OVERSIZE)
    return struct.pack(">H", len(raw)) + raw


def _hash32(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InputError(f"{what} must be 32 bytes", code=Code.MALFORMED, field=what)
    return value


def _count(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < 1 << 64:
        raise InputError(f"{what} must be a whole number from 0", code=Code.MALFORMED, field=what)
    return value


def _check_signature(key: Ed25519PublicKey, signature: bytes, message: bytes, what: str) -> None:
    try:
        key.verify(signature, message)
    except (InvalidSignature, TypeError, ValueError):
        raise SignatureError(f"the {what} is not signed by the hub's key") from None


@dataclass(frozen=True)
class MapHead:
    seq: int
    log_size: int
    log_root: bytes
    map_root: bytes
    time: str
    key_id: str
    signature: bytes
    index: int = 0  # the head's place in the hub's chain of heads
    prev: bytes = NO_PREV  # the digest of head index - 1

    def body(self) -> bytes:
        return (
            _HEAD
            + struct.pack(">QQ", _count(self.seq, "seq"), _count(self.log_size, "log_size"))
            + _hash32(self.log_root, "log_root")
            + _hash32(self.map_root, "map_root")
            + _field(self.time)
            + _field(self.key_id)
            + struct.pack(">Q", _count(self.index, "index"))
            + _hash32(self.prev, "prev")
        )

    def follows(self, before: MapHead) -> bool:
        """True iff this head is the next link after ``before`` in the hub's chain."""
        return self.index == before.index + 1 and self.prev == before.digest()

    def digest(self) -> bytes:
        """What a routing decision cites and a witness compares: SHA-256 of the signed body."""
        return hashlib.sha256(self.body()).digest()

    def verify(self, hub_key: Ed25519PublicKey) -> MapHead:
        """This head, if the hub's key signed it (``bad_signature`` otherwise, ``malformed`` for bad fields)."""
        _check_signature(hub_key, self.signature, self.body(), "map head")
        return self


def sign_head(
    signer: Signer,
    *,
    seq: int,
    log_size: int,
    log_root: bytes,
    map_root: bytes,
    time: str,
    after: MapHead | None = None,
    index: int | None = None,
    prev: bytes | None = None,
) -> MapHead:
    """The hub's signed head; the next link after ``after`` (the first head when None), unless ``index`` and
    ``prev`` are given outright (a test's malicious hub)."""
    index = (0 if after is None else after.index + 1) if index is None else index
    prev = (NO_PREV if after is None else after.digest()) if prev is None else prev
    unsigned = MapHead(seq, log_size, log_root, map_root, time, signer.key_id, b"", index, prev)
    return MapHead(seq, log_size, log_root, map_root, time, signer.key_id, signer.sign(unsigned.body()), index, prev)


@dataclass(frozen=True)
class RoutingDecision:
    request: str
    provider: str
    person_key: bytes
    action: str
    head_seq: int
    head_digest: bytes
    key_id: str
    signature: bytes

    def body(self) -> bytes:
        if self.action not in (AUTO, STAFF):
            raise InputError("a routing decision is 'auto' or 'staff'", code=Code.MALFORMED, field="action")
        return (
            _ROUTING
            + _field(check_event_id(self.request))
            + _field(check_party(self.provider, "provider"))
            + _hash32(self.person_key, "person_key")
            + _field(self.action)
            + struct.pack(">Q", _count(self.head_seq, "head_seq"))
            + _hash32(self.head_digest, "head_digest")
            + _field(self.key_id)
        )

    def verify(self, hub_key: Ed25519PublicKey) -> RoutingDecision:
        _check_signature(hub_key, self.signature, self.body(), "routing decision")
        return self

    def cites(self, head: MapHead) -> bool:
        return self.head_seq == head.seq and self.head_digest == head.digest()


def decide(
    signer: Signer, *, request: str, provider: str, person_key: bytes, action: Action, head: MapHead
) -> RoutingDecision:
    """The hub's signed decision for ``provider`` about ``request``, citing ``head``."""
    unsigned = RoutingDecision(request, provider, person_key, action, head.seq, head.digest(), signer.key_id, b"")
    return RoutingDecision(
        request, provider, person_key, action, head.seq, head.digest(), signer.key_id, signer.sign(unsigned.body())
    )
