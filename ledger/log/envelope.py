"""The signed envelope every stored and published event travels in (format v2, ``FLE2``).

Layout (before the at-rest cipher; big-endian integers)::

    b"FLE2" | u32 len | header | u32 len | payload
           | u32 index | u32 size | u8 n | n×32 path                      the event's place in its batch
           | u64 log_size | 32 log_root                                   the local log before the batch
           | u16 len | extensions                                         signed, batch-wide (TLV)
           | 64 signature

* ``header`` is canonical JSON (sorted keys, no spaces) naming the event id, originating agency, signing key
  id, stream id and version, the hash of the stream's previous event, the event topic, its time, the payload
  encoding (``enc``), what the digest commits to (``commit``; ``"sha256"``: SHA-256 of the payload bytes
  exactly as stored), the digest, and ``"v":2``. A header with a field this release does not know, or a
  commitment kind it does not know, is refused as ``newer_envelope`` (park it, upgrade, replay): later
  formats *add* header fields (e.g. a per-subject data key's id and its wrapping for each recipient agency,
  or a hiding commitment such as ``"commit":"hmac-sha256"``) instead of changing the layout.
* The event's *leaf hash* is RFC 6962's ``SHA-256(0x00 ‖ header)``; the next event of the stream names it as
  ``prev``, so the per-stream hash chain covers every header field and, through the digest, the payload.
* Events saved together are *sealed* together: one Ed25519 signature over :func:`batch_message` — the RFC
  6962 Merkle root of their leaf hashes and the batch size, **the size and root of the local log just before
  the batch** (every stored event, own and ingested, in notification order: :mod:`ledger.log.tree`) and the
  extension records. Each event carries its index, the batch size, its inclusion path and those batch-wide
  fields, so it verifies alone. The node's batches therefore form a signed chain of tree heads: deleting,
  truncating or reordering anything before a batch changes the log it committed to (``audit verify``).
* ``extensions`` are records ``u16 type | u16 len | value`` in strictly ascending type order (one spelling
  per content, since they are signed). A type with the high bit set is *critical*: a reader that does not
  know it refuses the envelope (``newer_envelope``); others are skipped (still signed). None is defined yet;
  the space is kept for batch-wide additions such as per-recipient key wrapping.
* Because the signature covers the payload *digest*, a payload may be encrypted under a per-subject key — ``enc``
  ``"dk1"`` (:mod:`ledger.log.subject_payload`, issue 22): the digest is then of the ciphertext — and the key
  destroyed at the end of retention, and every signature and chain link still verifies.

Format v1 (``FLE1``: no ``commit`` header field, ``"v":1``, no log head and no extensions in the seal, the
message ``flagledger/batch/v1``) is still *parsed*, so that ``audit verify`` can check a log written before v2;
the mapper refuses it everywhere else (:attr:`ledger.log.mapper.SignedMapper.read_v1`). See docs/tamper-evidence.md.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

from ledger.errors import Code, IntegrityError, SignatureError
from ledger.log.header import Header, newer_envelope
from ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash

__all__ = [
    "GENESIS",
    "MAGIC",
    "MAGIC_V1",
    "Envelope",
    "RootMemo",
    "Seal",
    "batch_message",
    "check_extensions",
    "seal_batch",
]

_sha256 = hashlib.sha256
T = TypeVar("T")
MAGIC = b"FLE2"
MAGIC_V1 = b"FLE1"
GENESIS = "0" * 64
_U32 = struct.Struct(">I")
_PREFIX = struct.Struct(">4sI")  # magic, header length
_SEAL = struct.Struct(">IIB")
_LOG = struct.Struct(">Q32sH")  # log size, log root, extensions length
_EXT = struct.Struct(">HH")
_U16 = struct.Struct(">H")
CRITICAL = 0x8000


class RootMemo:
    """The last inclusion-path computation of :meth:`Envelope.batch_root`: (path, state per level, root)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[bytes, list[tuple[int, int, bytes]], bytes] | None = None


_LOG_MSG = struct.Struct(">IQ")


def batch_message(
    key_id: str, root: bytes, size: int, log_size: int = -1, log_root: bytes = b"", ext: bytes = b""
) -> bytes:
    """What the agency key signs for a sealed batch: v2 (``log_size`` ≥ 0) commits to the log before it
    and to the extension records; v1 (``log_size`` −1) only to the batch."""
    if log_size < 0:
        return b"flagledger/batch/v1\x00" + key_id.encode() + b"\x00" + root + _U32.pack(size)
    return b"".join(
        (
            b"flagledger/batch/v2\x00",
            key_id.encode(),
            b"\x00",
            root,
            _LOG_MSG.pack(size, log_size),
            log_root,
            _U16.pack(len(ext)),
            ext,
        )
    )


def check_extensions(ext: bytes) -> None:
    """Refuse extension records that are malformed, out of order, or critical and unknown (none is known yet)."""
    at, last = 0, -1
    while at < len(ext):
        if at + 4 > len(ext):
            raise IntegrityError("malformed envelope extension record", code=Code.MALFORMED)
        kind, n = _EXT.unpack_from(ext, at)
        at += 4 + n
        if at > len(ext) or kind <= last:
            raise IntegrityError("malformed or unordered envelope extension records", code=Code.MALFORMED)
        last = kind
        if kind & CRITICAL:
            raise newer_envelope(f"envelope extension {kind:#06x} is critical and unknown")


class Seal(NamedTuple):
    """Where an event sits in its sealed batch and what the batch signed besides its root.

    ``path`` is the inclusion path, n×32 bytes as stored; ``log_size``/``log_root`` the local log just before
    the batch (−1/b"" in a v1 envelope); ``ext`` the batch's extension records as stored.
    """

    leaf_index: int  # (not ``index``: a tuple's method)
    size: int
    path: bytes
    signature: bytes
    log_size: int = -1
    log_root: bytes = b""
    ext: bytes = b""

    @property
    def v1(self) -> bool:
        return self.log_size < 0

    def message(self, key_id: str, root: bytes) -> bytes:
        return batch_message(key_id, root, self.size, self.log_size, self.log_root, self.ext)


class _memo(Generic[T]):
    """``functools.cached_property`` without its lock (taken on every first access in Python 3.11).

    A non-data descriptor: the first read stores the value in the instance ``__dict__``, which then
    shadows the descriptor, so every later read is a plain attribute lookup. Envelope reads ``header``
    about ten times per event (figures "audit verify", "projection rebuild", "ingest").
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _memo[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | _memo[T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


@dataclass(frozen=True, init=False)
class Envelope:
    header_bytes: bytes
    payload: bytes
    seal: Seal

    def __init__(self, header_bytes: bytes, payload: bytes, seal: Seal) -> None:
        # the fields straight into __dict__: a frozen dataclass's own __init__ goes through object.__setattr__
        # for each (once per event read)
        d = self.__dict__
        d["header_bytes"] = header_bytes
        d["payload"] = payload
        d["seal"] = seal

    @_memo
    def header(self) -> Header:
        h = Header.from_bytes(self.header_bytes)
        if (h.v == 1) != (self.seal.log_size < 0):
            raise IntegrityError("envelope header version does not match its format", code=Code.MALFORMED)
        return h

    @_memo
    def leaf_hash(self) -> bytes:
        return _sha256(b"\x00" + self.header_bytes).digest()

    @property
    def hash_hex(self) -> str:
        return self.leaf_hash.hex()

    def batch_root(self, memo: RootMemo | None = None) -> bytes:
        """The Merkle root this event's inclusion path implies (RFC 9162 §2.1.3.2, as ``root_from_inclusion``).

        ``memo`` keeps the last computation made with it. Its state at each level (index and last index
        at that level, node hash) plus the rest of its path are all the rest of the computation depends
        on: where this event's state and path suffix are the same, the rest is the same computation, so
        its root is taken as computed. Events of one batch read in order meet at their common ancestor
        (about two hashes each instead of log₂ n; figures "audit verify", "ingest"), and whatever the
        memo holds, the outcome is the one computing every level gives.
        """
        s = self.seal
        fn, sn = s.leaf_index, s.size - 1
        if not 0 <= fn <= sn:
            raise SignatureError("seal index outside its batch", code=Code.MALFORMED)
        r = self.leaf_hash
        path = s.path
        last = memo.last if memo is not None else None  # one read: a consistent snapshot across threads
        done: list[tuple[int, int, bytes]]
        if last is None:
            lpath, done, lroot = b"", [], b""
        else:
            lpath, done, lroot = last
        known = len(done)
        steps: list[tuple[int, int, bytes]] = []
        for level, at in enumerate(range(0, len(path), 32)):
            if level < known:
                d = done[level]
                if d[2] == r and d[0] == fn and d[1] == sn and path[at:] == lpath[at:]:
                    steps += done[level:]  # the rest is the memo's computation, input for input
                    root = lroot
                    break
            if sn == 0:
                raise SignatureError("malformed batch inclusion path (too long)", code=Code.MALFORMED)
            steps.append((fn, sn, r))
            p = path[at : at + 32]
            if level < known and d[0] == fn ^ 1 and d[1] == sn and d[2] == p and lpath[at : at + 32] == r:
                # the memo's node here was our sibling and combined with us: its parent is the one we make
                r = done[level + 1][2] if level + 1 < known else lroot
                if fn & 1 or fn == sn:
                    while not fn & 1 and fn != 0:
                        fn >>= 1
                        sn >>= 1
            elif fn & 1 or fn == sn:
                r = _sha256(b"\x01" + p + r).digest()
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                r = _sha256(b"\x01" + r + p).digest()
            fn >>= 1
            sn >>= 1
        else:
            if sn != 0:
                raise SignatureError("malformed batch inclusion path (too short)", code=Code.MALFORMED)
            root = r
        if memo is not None:
            memo.last = (path, steps, root)
        return root

    def check_digest(self) -> None:
        if hashlib.sha256(self.payload).hexdigest() != self.header.digest:
            raise SignatureError("payload does not match the signed digest")

    def to_bytes(self) -> bytes:
        s = self.seal
        if s.log_size < 0:
            return b"".join(
                (
                    MAGIC_V1,
                    _U32.pack(len(self.header_bytes)),
                    self.header_bytes,
                    _U32.pack(len(self.payload)),
                    self.payload,
                    _SEAL.pack(s.leaf_index, s.size, len(s.path) // 32),
                    s.path,
                    s.signature,
                )
            )
        return b"".join(
            (
                MAGIC,
                _U32.pack(len(self.header_bytes)),
                self.header_bytes,
                _U32.pack(len(self.payload)),
                self.payload,
                _SEAL.pack(s.leaf_index, s.size, len(s.path) // 32),
                s.path,
                _LOG.pack(s.log_size, s.log_root, len(s.ext)),
                s.ext,
                s.signature,
            )
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse (no verification). Every length is checked: the parts must fill ``raw`` exactly."""
        try:
            if type(raw) is not bytes:
                raw = bytes(raw)
            magic, hlen = _PREFIX.unpack_from(raw)
            if magic != MAGIC and magic != MAGIC_V1:
                raise ValueError("not a flagledger envelope (bad magic)")
            hend = 8 + hlen
            (plen,) = _U32.unpack_from(raw, hend)
            pstart = hend + 4
            pend = pstart + plen
            index, size, n = _SEAL.unpack_from(raw, pend)
            path_at = pend + 9
            path_end = path_at + 32 * n
            if magic == MAGIC:
                log_size, log_root, elen = _LOG.unpack_from(raw, path_end)
                ext_at = path_end + 42
                sig_at = ext_at + elen
            else:
                log_size, log_root, ext_at = -1, b"", path_end
                sig_at = path_end
            # every offset above was read inside raw; raw ending exactly after the signature means every
            # part has its full stated length
            if len(raw) != sig_at + 64:
                raise ValueError("truncated or trailing bytes")
            if size < 1 or index >= size:
                raise ValueError("seal index outside its batch")
            if log_size > _MAX_LOG:
                raise ValueError("log size out of range")
        except (ValueError, struct.error, TypeError) as exc:
            raise IntegrityError(f"malformed envelope: {exc}", code=Code.MALFORMED) from exc
        ext = raw[ext_at:sig_at]
        if ext:
            check_extensions(ext)
        return cls(
            raw[8:hend],
            raw[pstart:pend],
            tuple.__new__(Seal, (index, size, raw[path_at:path_end], raw[sig_at:], log_size, log_root, ext)),
        )


_MAX_LOG = (1 << 63) - 1  # a log size fits a signed 64-bit column (PostgreSQL bigint)


def _paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and every leaf's inclusion path for one batch, in O(n log n)."""
    n = len(leaves)
    if n == 1:
        return leaves[0], [[]]
    k = 1 << ((n - 1).bit_length() - 1)
    left_root, left_paths = _paths(leaves[:k])
    right_root, right_paths = _paths(leaves[k:])
    for p in left_paths:
        p.append(right_root)
    for p in right_paths:
        p.append(left_root)
    return node_hash(left_root, right_root), left_paths + right_paths


def seal_batch(
    headers: Sequence[bytes],
    payloads: Sequence[bytes],
    key_id: str,
    sign: Any,
    log_size: int = 0,
    log_root: bytes = EMPTY_ROOT,
    ext: bytes = b"",
) -> list[Envelope]:
    """Seal events saved together under one signature of their Merkle root and of the log before them
    (``log_size`` leaves with root ``log_root``; −1 and b"" write the v1 format, for tests of old logs)."""
    if not headers or len(headers) != len(payloads):
        # RFC 9162 defines no inclusion proof in an empty tree: sealing nothing is a caller's mistake
        raise ValueError(f"cannot seal {len(headers)} headers with {len(payloads)} payloads (need one each, ≥ 1)")
    if log_size < 0:
        log_root, ext = b"", b""
    elif len(log_root) != 32:
        raise ValueError("a log root is 32 bytes")
    leaves = [leaf_hash(h) for h in headers]
    root, paths = _paths(leaves)
    size = len(leaves)
    signature: bytes = sign(batch_message(key_id, root, size, log_size, log_root, ext))
    return [
        Envelope(h, p, Seal(i, size, b"".join(path), signature, log_size, log_root, ext))
        for i, (h, p, path) in enumerate(zip(headers, payloads, paths, strict=True))
    ]
