"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs and their verification.

Hashing (RFC 6962 §2.1, RFC 9162 §2.1.1): ``leaf = SHA-256(0x00 ‖ entry)``, ``node = SHA-256(0x01 ‖ left ‖ right)``
and the empty tree's root is ``SHA-256("")``. A tree of ``n > 1`` leaves splits at ``k``, the largest power of two
strictly smaller than ``n``. Every hash here is a raw 32-byte ``bytes`` value.

* :func:`leaf_hash`, :func:`node_hash`, :data:`EMPTY_ROOT` — the two hash domains and the empty root.
* :func:`root_hash` — MTH over already-hashed leaves; :class:`CompactRange` — the same root computed by streaming
  the leaf hashes one at a time in O(log n) memory (for checkpoints over millions of events).
* :func:`inclusion_proof`, :func:`consistency_proof` — PATH and PROOF/SUBPROOF of RFC 6962 §2.1.1 / §2.1.2, built
  from the full list of leaf hashes (O(n) hashing per proof).
* :func:`verify_inclusion`, :func:`verify_consistency` — the verification algorithms of RFC 9162 §2.1.3.2 and
  §2.1.4.2, step by step, with the edge cases of the transparency-dev reference (``size1 == size2`` needs an empty
  proof and equal roots; ``size1 == 0`` needs an empty proof). They return ``False`` for any malformed input
  (wrong types or lengths, negative or out-of-range numbers, wrong proof length) and never raise.
* :func:`root_from_inclusion` — the root an inclusion path implies, or ``None`` (used to check batch seals).

Proof generators (:func:`root_hash`, :func:`inclusion_proof`, :func:`consistency_proof`, :class:`CompactRange`)
are for our own data and raise ``TypeError``/``ValueError`` on bad arguments; only the verifiers are total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the tree with no leaves."""


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one log entry: ``SHA-256(0x00 ‖ entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# -- building trees and proofs ----------------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    # ``type(...) is int`` also keeps out ``bool`` (an ``int`` subclass).
    return type(value) is int and value >= 0


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(leaf_hashes):
        if not _is_hash(h):
            raise TypeError(f"leaf hash {i} is not {HASH_SIZE} bytes: {h!r:.80}")


def _check_int(name: str, value: object) -> None:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for ``hi > lo``, without copying the sequence."""
    n = hi - lo
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves (RFC 6962 §2.1); ``EMPTY_ROOT`` for no leaves."""
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _path(leaves: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) — ``m`` is relative to ``lo``."""
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(leaves, m, lo, lo + k), _mth(leaves, lo + k, hi)]
    return [*_path(leaves, m - k, lo + k, hi), _mth(leaves, lo, lo + k)]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1: the audit path of leaf ``index``, leaf level first."""
    _check_int("index", index)
    _check_leaves(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"index {index} outside a tree of size {n}")
    return _path(leaf_hashes, index, 0, n)


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], whole) of RFC 6962 §2.1.2 — ``m`` counts leaves from ``lo``."""
    n = hi - lo
    if m == n:
        return [] if whole else [_mth(leaves, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, lo, lo + k, whole), _mth(leaves, lo + k, hi)]
    return [*_subproof(leaves, m - k, lo + k, hi, False), _mth(leaves, lo, lo + k)]


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 6962 §2.1.2, with ``size2 = len(leaf_hashes)``.

    Empty when ``size1`` is 0 or ``size2`` (nothing to prove), as in the transparency-dev reference.
    """
    _check_int("size1", size1)
    _check_leaves(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= size1 <= n:
        raise ValueError(f"size1 {size1} outside 0..{n}")
    if size1 in (0, n):
        return []
    return _subproof(leaf_hashes, size1, 0, n, True)


class CompactRange:
    """Streaming MTH: append leaf hashes one at a time, ask for the root of the tree so far at any point.

    Holds one ``(subtree size, subtree root)`` pair per set bit of the size — the perfect subtrees the leaves
    appended so far decompose into, largest first — so memory is O(log n) however many leaves go in.
    ``CompactRange`` over ``D[:n]`` gives ``root() == root_hash(D[:n])`` for every ``n``.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self._size = 0
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (32 bytes, already ``leaf_hash``-ed); amortised O(1) hashes."""
        if not _is_hash(leaf):
            raise TypeError(f"leaf hash {self._size} is not {HASH_SIZE} bytes: {leaf!r:.80}")
        self._stack.append((1, leaf))
        self._size += 1
        # Merge equal-sized perfect subtrees, exactly like carrying in binary addition.
        while len(self._stack) >= 2 and self._stack[-1][0] == self._stack[-2][0]:
            size, right = self._stack.pop()
            _, left = self._stack.pop()
            self._stack.append((2 * size, node_hash(left, right)))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append every leaf hash of ``leaf_hashes`` in order."""
        for leaf in leaf_hashes:
            self.append(leaf)

    @classmethod
    def from_frontier(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """The range over ``size`` leaves whose perfect subtrees (largest first) have the roots ``hashes`` —
        what :meth:`frontier` returned. Raises ``ValueError`` if the count does not fit ``size``."""
        if type(size) is not int or size < 0:
            raise ValueError(f"a tree size must be a non-negative int, not {size!r}")
        sizes = [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        if len(sizes) != len(hashes) or not all(_is_hash(h) for h in hashes):
            raise ValueError(f"a frontier of a {size}-leaf tree has {len(sizes)} hashes of {HASH_SIZE} bytes")
        r = cls()
        r._stack = list(zip(sizes, hashes, strict=True))
        r._size = size
        return r

    def frontier(self) -> list[bytes]:
        """The roots of the perfect subtrees the leaves so far decompose into, largest (leftmost) first:
        with the size, everything needed to go on appending (see :meth:`from_frontier`)."""
        return [h for _, h in self._stack]

    def copy(self) -> CompactRange:
        return CompactRange.from_frontier(self._size, self.frontier())

    def root(self) -> bytes:
        """MTH of the leaves appended so far (``EMPTY_ROOT`` if none); O(log n) hashes."""
        if not self._stack:
            return EMPTY_ROOT
        # The subtrees are the left-to-right split points of RFC 6962's MTH, so fold them from the right.
        r = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r


# -- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------------------------


def _hashes(proof: object) -> list[bytes] | None:
    """The proof as a list of 32-byte hashes, or None if it is not a sequence of them."""
    if isinstance(proof, (bytes, bytearray, memoryview, str)) or not isinstance(proof, Sequence):
        return None
    try:
        items = list(proof)
    except Exception:  # a hostile Sequence must not make a verifier raise
        return None
    return items if all(_is_hash(p) for p in items) else None


def _lsb(x: int) -> bool:
    return x & 1 == 1


def root_from_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` implies for ``leaf`` at ``index`` of ``tree_size`` leaves (RFC 9162 §2.1.3.2 steps
    1-4 plus the ``sn == 0`` check of step 5), or ``None`` if the proof cannot belong to that position."""
    path = _hashes(proof)
    if path is None or not _is_hash(leaf) or not _is_size(index) or not _is_size(tree_size):
        return None
    # 1. leaf_index >= tree_size fails.
    if index >= tree_size:
        return None
    # 2.-3.
    fn, sn = index, tree_size - 1
    r = leaf
    # 4.
    for p in path:
        if sn == 0:  # 4a. proof too long
            return None
        if _lsb(fn) or fn == sn:  # 4b.
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:  # 4b-ii. (a no-op when LSB(fn) is set)
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c.
        sn >>= 1
    # 5. (first half) proof too short
    if sn != 0:
        return None
    return r


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff ``proof`` shows ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` leaves with ``root``.

    RFC 9162 §2.1.3.2. Any malformed argument gives ``False``; this never raises.
    """
    if not _is_hash(root):
        return False
    computed = root_from_inclusion(leaf_hash, index, tree_size, proof)
    return computed is not None and computed == root


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    """True iff ``proof`` shows the tree (``size1``, ``root1``) is a prefix of the tree (``size2``, ``root2``).

    RFC 9162 §2.1.4.2 for ``0 < size1 < size2``; as in the transparency-dev reference, ``size1 == size2`` needs an
    empty proof and ``root1 == root2``, and ``size1 == 0`` (consistent with any tree) needs an empty proof. Any
    malformed argument (including roots that are not 32 bytes) gives ``False``; this never raises.
    """
    path = _hashes(proof)
    if path is None or not _is_size(size1) or not _is_size(size2) or not _is_hash(root1) or not _is_hash(root2):
        return False
    if size2 < size1:
        return False
    if size1 == size2:
        return not path and root1 == root2
    if size1 == 0:
        return not path
    # Now 0 < first < second.
    # 1. An empty consistency_path fails.
    if not path:
        return False
    # 2. If first is an exact power of 2, prepend first_hash.
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    # 3.
    fn, sn = size1 - 1, size2 - 1
    # 4.
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:  # 6a. proof too long
            return False
        if _lsb(fn) or fn == sn:  # 6b.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not _lsb(fn) and fn != 0:  # 6b-ii. (a no-op when LSB(fn) is set)
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c.
        sn >>= 1
    # 7.
    return fr == root1 and sr == root2 and sn == 0
