"""Bytes for what the hub signs about its flag map, as they travel inside sealed messages and are kept as
evidence (issue #20): map heads, routing decisions, map proofs and evidence.

One encoding each, checked on the way in: :func:`decode_head` and :func:`decode_decision` give back only what
re-encodes to the same bytes (so a signature is checked over exactly what was received), and every decoder
raises ``malformed`` (an ``IntegrityError``: the bytes come from the hub or a peer) on anything else, never
another exception. Signatures are not checked here: that is ``MapHead.verify`` and the checks of
:mod:`ledger.linkage.routing` and :mod:`ledger.linkage.witness`.

::

    head      = head body (ledger.linkage.map_heads) | Ed25519 signature (64)
    decision  = decision body | Ed25519 signature (64)
    proof     = key (32) | u8 has value | u16 len | value | bitmap (32) | siblings (32 × bits set)
    routing   = u16 len | decision | u16 len | head | u16 len | proof        (what a provider is sent, sealed)
    evidence  = "FLV1" | field(code) | field(note) | u8 n | (u16 len | head)×n | u8 has decision
                | [u16 len | decision] | u8 n | (u16 len | proof)×n | u16 n | hash (32)×n | u8 n | field(flag)×n
"""

from __future__ import annotations

import hashlib
import struct
from typing import TypeVar

from ledger.errors import Code, FlagLedgerError, IntegrityError
from ledger.linkage.flag_map import MapProof
from ledger.linkage.map_heads import MapHead, RoutingDecision
from ledger.linkage.witness import Evidence

__all__ = [
    "decode_decision",
    "decode_evidence",
    "decode_head",
    "decode_proof",
    "decode_routing",
    "encode_decision",
    "encode_evidence",
    "encode_head",
    "encode_proof",
    "encode_routing",
    "evidence_digest",
]

_HEAD = b"flagledger/map-head/2\x00"
_ROUTING = b"flagledger/routing/1\x00"
_EVIDENCE = b"FLV1"
_SIG = 64
_Signed = TypeVar("_Signed", MapHead, RoutingDecision)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, bytes):
            raise IntegrityError(f"a {what} must be bytes", code=Code.MALFORMED)
        self.data, self.at, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise IntegrityError(f"the {self.what} ends early", code=Code.MALFORMED)
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def field(self) -> str:
        try:
            return self.take(self.uint(2)).decode()
        except UnicodeDecodeError:
            raise IntegrityError(f"the {self.what} has a field that is not UTF-8", code=Code.MALFORMED) from None

    def sized(self) -> bytes:
        return self.take(self.uint(2))

    def done(self) -> None:
        if self.at != len(self.data):
            raise IntegrityError(f"the {self.what} has bytes after its end", code=Code.MALFORMED)


def _canonical(value: _Signed, data: bytes, what: str) -> _Signed:
    try:
        same = value.body() + value.signature == data
    except FlagLedgerError:
        same = False
    if not same:
        raise IntegrityError(f"the {what} is not in its one encoding", code=Code.MALFORMED)
    return value


def encode_head(head: MapHead) -> bytes:
    return head.body() + head.signature


def decode_head(data: bytes) -> MapHead:
    r = _Reader(data, "map head")
    if r.take(len(_HEAD)) != _HEAD:
        raise IntegrityError("not a map head", code=Code.MALFORMED)
    seq, log_size = r.uint(8), r.uint(8)
    log_root, map_root = r.take(32), r.take(32)
    time, key_id = r.field(), r.field()
    index, prev, signature = r.uint(8), r.take(32), r.take(_SIG)
    r.done()
    head = MapHead(seq, log_size, log_root, map_root, time, key_id, signature, index, prev)
    return _canonical(head, data, "map head")


def encode_decision(decision: RoutingDecision) -> bytes:
    return decision.body() + decision.signature


def decode_decision(data: bytes) -> RoutingDecision:
    r = _Reader(data, "routing decision")
    if r.take(len(_ROUTING)) != _ROUTING:
        raise IntegrityError("not a routing decision", code=Code.MALFORMED)
    request, provider, person_key, action = r.field(), r.field(), r.take(32), r.field()
    head_seq, head_digest, key_id, signature = r.uint(8), r.take(32), r.field(), r.take(_SIG)
    r.done()
    decision = RoutingDecision(request, provider, person_key, action, head_seq, head_digest, key_id, signature)
    return _canonical(decision, data, "routing decision")


def encode_proof(proof: MapProof) -> bytes:
    return proof.encode()


def decode_proof(data: bytes) -> MapProof:
    r = _Reader(data, "map proof")
    key, has = r.take(32), r.uint(1)
    value = r.sized()
    if has not in (0, 1) or (has == 0 and value):
        raise IntegrityError("a map proof's value flag is neither absent nor present", code=Code.MALFORMED)
    present = r.take(32)
    count = int.from_bytes(present, "big").bit_count()
    siblings = tuple(r.take(32) for _ in range(count))
    r.done()
    return MapProof(key, value if has else None, present, siblings)


def _sized(raw: bytes) -> bytes:
    return struct.pack(">H", len(raw)) + raw


def encode_routing(decision: RoutingDecision, head: MapHead, proof: MapProof) -> bytes:
    """The payload of the hub's message to a provider: the decision, the head it cites, the person's proof.
    Sealed at ``ANSWER_SIZE`` (ledger.linkage.buckets), a flagged and an unflagged person's look the same."""
    return _sized(encode_decision(decision)) + _sized(encode_head(head)) + _sized(encode_proof(proof))


def decode_routing(data: bytes) -> tuple[RoutingDecision, MapHead, MapProof]:
    r = _Reader(data, "routing message")
    decision, head, proof = decode_decision(r.sized()), decode_head(r.sized()), decode_proof(r.sized())
    r.done()
    return decision, head, proof


def encode_evidence(evidence: Evidence) -> bytes:
    def field(text: str) -> bytes:
        return _sized(text.encode())

    out = [_EVIDENCE, field(evidence.code), field(evidence.note), bytes([len(evidence.heads)])]
    out += [_sized(encode_head(h)) for h in evidence.heads]
    out.append(b"\x00" if evidence.decision is None else b"\x01" + _sized(encode_decision(evidence.decision)))
    out.append(bytes([len(evidence.proofs)]))
    out += [_sized(encode_proof(p)) for p in evidence.proofs]
    out.append(struct.pack(">H", len(evidence.consistency)) + b"".join(evidence.consistency))
    out.append(bytes([len(evidence.flags)]))
    out += [field(f) for f in sorted(evidence.flags)]
    return b"".join(out)


def decode_evidence(data: bytes) -> Evidence:
    r = _Reader(data, "evidence")
    if r.take(len(_EVIDENCE)) != _EVIDENCE:
        raise IntegrityError("not hub evidence", code=Code.MALFORMED)
    code, note = r.field(), r.field()
    heads = tuple(decode_head(r.sized()) for _ in range(r.uint(1)))
    has = r.uint(1)
    if has not in (0, 1):
        raise IntegrityError("evidence's decision flag is neither absent nor present", code=Code.MALFORMED)
    decision = decode_decision(r.sized()) if has else None
    proofs = tuple(decode_proof(r.sized()) for _ in range(r.uint(1)))
    consistency = tuple(r.take(32) for _ in range(r.uint(2)))
    flags = frozenset(r.field() for _ in range(r.uint(1)))
    r.done()
    evidence = Evidence(code, heads, note, decision, proofs, consistency, flags)
    if encode_evidence(evidence) != data:
        raise IntegrityError("the evidence is not in its one encoding", code=Code.MALFORMED)
    return evidence


def evidence_digest(evidence: Evidence) -> str:
    """SHA-256 of the evidence's bytes, hex: what an incident records as its message (one per evidence)."""
    return hashlib.sha256(encode_evidence(evidence)).hexdigest()
