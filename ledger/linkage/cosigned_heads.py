"""Witnesses' cosignatures of the hub's map heads, as the hub passes them on (issue #20, docs/accountable-hub.md).

A witness cosigns each map head it was announced and found consistent with every head before it (its chain:
index and predecessor, the log's consistency proof) and sends the cosignature to the hub, which keeps it
(``hub_cosignatures``) and attaches the cosignatures of the head a routing decision cites to the provider's
``proven_query``, and those of the head before to each ``map_head`` announcement. A party counts only the
cosignatures of witnesses it names itself, each checked with that witness's key from its own directory — the
hub passes them on and cannot make one::

    cosignatures = u16 n | n × (field(witness) | field(key id) | signature (64))     field(x) = u16 len | UTF-8
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature

from ledger.errors import Code, FlagLedgerError, IntegrityError
from ledger.linkage.hub_wire import encode_head
from ledger.linkage.map_heads import MapHead
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.tree_heads import cosigned

__all__ = ["Cosig", "count_cosigned", "decode_cosigs", "encode_cosigs"]

Cosig = tuple[str, str, bytes]  # witness, its key id, the signature over cosigned(encode_head(head))
_SIG = 64
MAX_COSIGS = 16


def _field(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def encode_cosigs(cosigs: Sequence[Cosig]) -> str:
    chosen = sorted(cosigs)[:MAX_COSIGS]
    out = [struct.pack(">H", len(chosen))]
    out += [_field(w) + _field(k) + s for w, k, s in chosen if len(s) == _SIG]
    return b"".join(out).hex() if chosen else ""


def decode_cosigs(value: str) -> list[Cosig]:
    """The cosignatures a message carries; ``malformed`` on anything else (the bytes are the hub's)."""
    if not value:
        return []
    raw, at = bytes.fromhex(value), 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(raw):
            raise IntegrityError("the cosignatures end early", code=Code.MALFORMED)
        at += n
        return raw[at - n : at]

    def field() -> str:
        try:
            return take(int.from_bytes(take(2), "big")).decode()
        except UnicodeDecodeError:
            raise IntegrityError("a cosignature names no witness", code=Code.MALFORMED) from None

    count = int.from_bytes(take(2), "big")
    if count > MAX_COSIGS:
        raise IntegrityError("too many cosignatures", code=Code.MALFORMED)
    out = [(field(), field(), take(_SIG)) for _ in range(count)]
    if at != len(raw):
        raise IntegrityError("the cosignatures have bytes after their end", code=Code.MALFORMED)
    return out


def count_cosigned(head: MapHead, cosigs: Sequence[Cosig], witnesses: Sequence[str], keys: SenderKeys) -> int:
    """How many of ``witnesses`` (the party's own list) cosigned ``head``: each counted once, and only if its
    signature checks with its key in the party's directory. Never raises: a bad one counts nothing."""
    subject, counted = cosigned(encode_head(head)), set()
    for witness, key_id, signature in cosigs:
        if witness not in witnesses or witness in counted:
            continue
        try:
            keys(witness, key_id).verify(signature, subject)
        except (InvalidSignature, FlagLedgerError, ValueError, TypeError):  # no such key, or bad bytes
            continue
        counted.add(witness)
    return len(counted)
