"""Digests: the hub's one sealed message per inbox per tick, so that traffic tells the broker operator nothing.

Without them a consultation lands in a holder's inbox right after a query about the person it protects, and
whoever reads the broker's traffic (the operator: ACLs keep peers out) learns who protects whom. On a digest
schedule the hub sends nothing to an agency's inbox but **one digest per tick, of one fixed size**, to every
party it serves, whether it owes that party anything or not; what it owes (routed queries, consultations,
answers — each still sealed and signed on its own) is batched inside, and what does not fit waits for the
next tick. So every inbox gets the same number of same-size messages per tick, whoever holds.

The digest's payload (kind ``digest``, sealed to the recipient, padded to the digest's bucket)::

    u16 count | count × (u32 length | a sealed message to the same recipient)

The inner messages are opened as if they had come alone (:func:`expand` returns them), so their event ids,
signatures and recipients are checked as before; a digest that holds a message for another party is refused
when that message is opened (``misaddressed``).
"""

from __future__ import annotations

import struct
import uuid

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ledger.errors import Code, ConfigurationError, InputError, IntegrityError, PermissionDenied
from ledger.linkage.buckets import BUCKETS
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB
from ledger.linkage.sealing import SenderKeys, seal, unseal
from ledger.log.signing import Signer

__all__ = ["DIGEST_KIND", "DIGEST_SIZE", "expand", "pack", "room", "seal_digest", "unpack"]

DIGEST_KIND = "digest"
# three answer-sized messages (4 096 + their envelope) fit one 16 384 digest; a deployment picks another
# bucket for more per tick (docs/accountable-hub.md: the cost of cover traffic)
DIGEST_SIZE = 16384
_SIG = 64
_LENGTHS = 2 + 2 + 4  # field(kind), field(key id), the payload's u32 length — around the signature (64)


def room(size: int, key_id: str) -> int:
    """The payload bytes a digest of bucket ``size`` carries when signed under ``key_id``."""
    if size not in BUCKETS:
        raise ConfigurationError(f"a digest's size must be a bucket {BUCKETS}, not {size}")
    return size - _LENGTHS - len(DIGEST_KIND.encode()) - len(key_id.encode()) - _SIG


def pack(messages: list[bytes], limit: int) -> tuple[bytes, int]:
    """The payload holding the first of ``messages`` that fit in ``limit`` bytes, in order, and how many."""
    body, taken = b"", 0
    for message in messages:
        item = struct.pack(">I", len(message)) + message
        if 2 + len(body) + len(item) > limit or taken == 0xFFFF:
            break
        body += item
        taken += 1
    return struct.pack(">H", taken) + body, taken


def seal_digest(
    signer: Signer, recipient_key: X25519PublicKey, recipient: str, messages: list[bytes], size: int
) -> tuple[bytes, int]:
    """One digest of ``size`` bytes to ``recipient`` holding the first of ``messages`` that fit, and how many.
    A first message larger than the digest goes alone in the smallest bucket that holds it — that digest's
    size shows, but a digest size chosen too small never blocks the queue behind it (``oversize`` if no bucket
    holds it)."""
    if messages and 2 + 4 + len(messages[0]) > room(size, signer.key_id):
        size = next((b for b in BUCKETS if 2 + 4 + len(messages[0]) <= room(b, signer.key_id)), 0)
        if not size:
            raise InputError("a message is larger than the largest digest", code=Code.OVERSIZE)
    payload, taken = pack(messages, room(size, signer.key_id))
    return seal(signer, recipient_key, recipient, uuid.uuid4().hex, DIGEST_KIND, payload, size), taken


def unpack(payload: bytes) -> list[bytes]:
    """The sealed messages in a digest's payload; ``malformed`` if its framing does not add up."""
    if len(payload) < 2:
        raise IntegrityError("a digest ends inside its count", code=Code.MALFORMED)
    (count,) = struct.unpack_from(">H", payload)
    at, out = 2, []
    for _ in range(count):
        if at + 4 > len(payload):
            raise IntegrityError("a digest ends inside a message's length", code=Code.MALFORMED)
        (size,) = struct.unpack_from(">I", payload, at)
        if at + 4 + size > len(payload):
            raise IntegrityError("a digest ends inside a message", code=Code.MALFORMED)
        out.append(payload[at + 4 : at + 4 + size])
        at += 4 + size
    if at != len(payload):
        raise IntegrityError("a digest has trailing bytes", code=Code.MALFORMED)
    return out


def expand(keys: PartyKeys, message: bytes, sender_keys: SenderKeys) -> list[bytes]:
    """The messages a delivery carries: a digest's inner messages (opened and checked to be the hub's), or the
    message itself if it is no digest (a hub not on a schedule sends them one by one)."""
    opened = unseal(keys.sealing, keys.name, message, sender_keys)
    if opened.kind != DIGEST_KIND:
        return [message]
    if opened.sender != HUB:
        raise PermissionDenied(f"only the hub sends digests, not {opened.sender}", code=Code.WRONG_ROUTE)
    return unpack(opened.payload)
