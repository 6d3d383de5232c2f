"""An agency's own signed tree head on the linkage, and the witnesses' messages (issue #20, docs/accountable-hub.md).

An agency's log already has signed checkpoints (``ledger.app.checkpoints``): this module carries one to the hub
and to the witnesses, in the checkpoint's own statement (the bytes are the same, so a node publishes the
checkpoint it signed). ``ledger.app`` sits above the linkage, so the statement's format is repeated here and
held equal by a test.

==========================  ====================  ===============================================================
kind                        from → to             holds
==========================  ====================  ===============================================================
``tree_head``               agency → hub,         the agency's signed head (wire bytes, hex) and the consistency
                            hub → witness,        proof from the head it published before; the hub forwards
                            agency → witness      what it was shown to every witness, unchanged (the agency's
                            (relayed)             signature is inside)
``relay``                   party → hub           a message already sealed by the sender to another party: the
                                                  hub forwards it unopened (star routes: ledger.linkage.transport)
``gossip``                  witness → witness     the witness's newest hub head and the newest head of each
                            (relayed)             agency it holds
``cosignature``             witness → signer      the witness's signature over a head it found consistent
                            (relayed)
``witness_incident``        witness → accused     a fork or rollback found, with the two signed heads as evidence
                            (relayed)
==========================  ====================  ===============================================================
"""

from __future__ import annotations

import re
import struct
import uuid
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ledger.errors import Code, InputError, IntegrityError, SignatureError
from ledger.linkage.messages import Message
from ledger.linkage.names import check_party
from ledger.linkage.sealing import SenderKeys, bucket_of, seal
from ledger.log.signing import Signer
from ledger.merkle import HASH_SIZE

__all__ = [
    "MAX_GOSSIP",
    "WITNESS_KINDS",
    "Cosignature",
    "GossipMessage",
    "RelayMessage",
    "TreeHead",
    "TreeHeadMessage",
    "WitnessIncident",
    "cosigned",
    "decode_tree_head",
    "encode_tree_head",
    "relayed",
    "statement",
]

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
_SIG = 64
# agency heads per gossip message (a witness sends as many as it needs): small enough that a relayed gossip fits
# a hub's digest of the default size (ledger.linkage.digests.DIGEST_SIZE) beside other messages
MAX_GOSSIP = 8
_COSIGN = b"flagledger/cosignature/1\x00"


def statement(origin: str, tree_size: int, root: bytes, time: str, key_id: str) -> bytes:
    """The bytes an agency key signs for a checkpoint: ``ledger.app.checkpoints.statement``'s, to the byte."""
    return (
        f"flagledger checkpoint v1\norigin {origin}\ntree_size {tree_size}\nroot {root.hex()}\n"
        f"time {time}\nkey {key_id}\n"
    ).encode()


@dataclass(frozen=True)
class TreeHead:
    """An agency's signed checkpoint: its log of ``size`` leaves has ``root``."""

    origin: str
    size: int
    root: bytes
    time: str
    key_id: str
    signature: bytes

    @classmethod
    def sign(cls, signer: Signer, size: int, root: bytes, time: str) -> TreeHead:
        sig = signer.sign(statement(signer.agency, size, root, time, signer.key_id))
        return cls(signer.agency, size, root, time, signer.key_id, sig)

    def statement(self) -> bytes:
        return statement(self.origin, self.size, self.root, self.time, self.key_id)

    def verify(self, keys: SenderKeys) -> TreeHead:
        """Signed by a key registered to ``origin`` (``SenderKeys``: the directory's, at a time); else a
        ledger error — an unsigned head is no evidence against anyone."""
        key = keys(self.origin, self.key_id)
        try:
            key.verify(self.signature, self.statement())
        except InvalidSignature:
            raise SignatureError(f"the tree head of {self.origin} does not verify", code=Code.BAD_SIGNATURE) from None
        return self


def _field(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 200:
        raise InputError("a tree head's field is too long", code=Code.MALFORMED)
    return struct.pack(">H", len(raw)) + raw


def encode_tree_head(head: TreeHead) -> bytes:
    if not 0 <= head.size < 2**63 or len(head.root) != HASH_SIZE or len(head.signature) != _SIG:
        raise InputError("a tree head has a size, a 32-byte root and a 64-byte signature", code=Code.MALFORMED)
    return (
        _field(check_party(head.origin, "origin"))
        + struct.pack(">Q", head.size)
        + head.root
        + _field(head.time)
        + _field(head.key_id)
        + head.signature
    )


def decode_tree_head(data: bytes) -> TreeHead:
    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(data):
            raise IntegrityError("a tree head ends early", code=Code.MALFORMED)
        at += n
        return data[at - n : at]

    def field() -> str:
        (n,) = struct.unpack(">H", take(2))
        try:
            return take(n).decode()
        except UnicodeDecodeError:
            raise IntegrityError("a tree head's field is not UTF-8", code=Code.MALFORMED) from None

    origin = field()
    (size,) = struct.unpack(">Q", take(8))
    head = TreeHead(origin, size, take(HASH_SIZE), field(), field(), take(_SIG))
    if at != len(data):
        raise IntegrityError("a tree head has trailing bytes", code=Code.MALFORMED)
    try:
        check_party(origin, "origin")
    except InputError as exc:
        raise IntegrityError(str(exc), code=Code.MALFORMED) from None
    return head


def _hex(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or not _HEX.match(value):
        raise InputError(f"{what} must be lowercase hex", code=Code.MALFORMED, field=what)
    return value


def _proof(value: str) -> None:
    if len(_hex(value, "consistency", 64 * 64)) % 64:
        raise InputError("a consistency proof is whole 32-byte hashes", code=Code.MALFORMED, field="consistency")


def cosigned(subject: bytes) -> bytes:
    """What a witness signs to cosign a head: a domain, then the head's signed bytes as they travelled."""
    return _COSIGN + subject


@dataclass(frozen=True)
class TreeHeadMessage(Message):
    kind: ClassVar[str] = "tree_head"
    head: str  # hex of encode_tree_head
    prev_size: int  # the size of the head published before (0: the first)
    consistency: str  # hex of the RFC 6962 consistency proof from prev_size to this head's size

    def check(self) -> None:
        decode_tree_head(bytes.fromhex(_hex(self.head, "head", 1024)))
        _proof(self.consistency)
        if self.prev_size < 0:
            raise InputError("prev_size is a log size", code=Code.MALFORMED, field="prev_size")

    def tree_head(self) -> TreeHead:
        return decode_tree_head(bytes.fromhex(self.head))


@dataclass(frozen=True)
class RelayMessage(Message):
    kind: ClassVar[str] = "relay"
    to: str
    sealed: str  # hex of a message sealed by the sender to ``to``: the hub forwards it and cannot open it

    def check(self) -> None:
        check_party(self.to, "to")
        _hex(self.sealed, "sealed", 600_000)


def relayed(signer: Signer, to_key: X25519PublicKey, to: str, message: Message, exactly: int = 0) -> RelayMessage:
    """``message`` sealed end to end to ``to``, for the hub to forward: the hub sees who writes to whom, never
    what. Not padded to an answer's size: the relay's hex doubles it, and an agency's relayed head must fit
    inside its digest (ledger.linkage.digests). ``exactly``: the bucket the sealed message must be (a message
    that does not fit is refused, ``oversize``, rather than sent in a bigger bucket whose size would tell)."""
    inner = seal(signer, to_key, to, uuid.uuid4().hex, message.kind, message.encode(), exactly)
    if exactly and bucket_of(inner) != exactly:
        raise InputError(f"a relayed {message.kind} does not fit its {exactly}-byte bucket", code=Code.OVERSIZE)
    return RelayMessage(to, inner.hex())


@dataclass(frozen=True)
class GossipMessage(Message):
    kind: ClassVar[str] = "gossip"
    hub_head: str  # hex of ledger.linkage.hub_wire.encode_head ("" if none seen yet)
    tree_heads: str  # hex of the agency heads, each u16-length-prefixed encode_tree_head

    def check(self) -> None:
        _hex(self.hub_head, "hub_head", 2048)
        self.heads()

    def heads(self) -> list[TreeHead]:
        raw, found = bytes.fromhex(_hex(self.tree_heads, "tree_heads", 2 * MAX_GOSSIP * 700)), []
        at = 0
        while at < len(raw):
            if at + 2 > len(raw):
                raise InputError("a gossip's heads end early", code=Code.MALFORMED)
            (n,) = struct.unpack_from(">H", raw, at)
            found.append(decode_tree_head(raw[at + 2 : at + 2 + n]))
            at += 2 + n
        if at != len(raw) or len(found) > MAX_GOSSIP:
            raise InputError(f"a gossip holds at most {MAX_GOSSIP} whole heads", code=Code.MALFORMED)
        return found

    @classmethod
    def of(cls, hub_head: bytes, heads: list[TreeHead]) -> GossipMessage:
        packed = b"".join(struct.pack(">H", len(w)) + w for w in map(encode_tree_head, heads[:MAX_GOSSIP]))
        return cls(hub_head.hex(), packed.hex())


@dataclass(frozen=True)
class Cosignature(Message):
    kind: ClassVar[str] = "cosignature"
    subject: str  # hex of the head's bytes (a map head's encode_head, or an agency's encode_tree_head)
    key_id: str  # the witness's key
    signature: str  # hex, over cosigned(subject)

    def check(self) -> None:
        _hex(self.subject, "subject", 2048)
        if len(_hex(self.signature, "signature", 128)) != 128:
            raise InputError("a cosignature is 64 bytes", code=Code.MALFORMED, field="signature")

    @classmethod
    def of(cls, signer: Signer, subject: bytes) -> Cosignature:
        return cls(subject.hex(), signer.key_id, signer.sign(cosigned(subject)).hex())

    def verify(self, keys: SenderKeys, witness: str) -> bytes:
        """The head cosigned, if ``witness``'s registered key signed it; SignatureError otherwise (the
        envelope's signature says who sent it, this one is evidence anyone can check again)."""
        subject = bytes.fromhex(self.subject)
        try:
            keys(witness, self.key_id).verify(bytes.fromhex(self.signature), cosigned(subject))
        except InvalidSignature:
            raise SignatureError(f"the cosignature of {witness} does not verify", code=Code.BAD_SIGNATURE) from None
        return subject


@dataclass(frozen=True)
class WitnessIncident(Message):
    kind: ClassVar[str] = "witness_incident"
    code: str  # hub_fork, hub_rollback, head_skipped, checkpoint_fork, checkpoint_rollback
    accused: str  # the party whose two signed heads disagree
    evidence: str  # hex: the two heads, each u32-length-prefixed (map heads or tree heads), then the proof
    note: str

    def check(self) -> None:
        if self.code not in (
            Code.HUB_FORK,
            Code.HUB_ROLLBACK,
            Code.HEAD_SKIPPED,
            Code.CHECKPOINT_FORK,
            Code.CHECKPOINT_ROLLBACK,
        ):
            raise InputError("a witness raises forks and rollbacks only", code=Code.MALFORMED, field="code")
        check_party(self.accused, "accused")
        _hex(self.evidence, "evidence", 16_384)
        if not isinstance(self.note, str) or len(self.note) > 500:
            raise InputError("a witness incident's note is at most 500 characters", code=Code.MALFORMED)


WITNESS_KINDS: dict[str, type[Message]] = {
    m.kind: m for m in (TreeHeadMessage, RelayMessage, GossipMessage, Cosignature, WitnessIncident)
}
