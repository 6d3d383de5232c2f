"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs and their verification.

Hashing (RFC 6962 §2.1): ``leaf = SHA-256(0x00 ‖ entry)``, ``node = SHA-256(0x01 ‖ left ‖ right)``, the empty
tree's root is ``SHA-256("")``. Hashes are raw 32-byte ``bytes``.

* :func:`root_hash`, :class:`CompactRange` — a tree's root (the latter streaming, O(log n) memory).
* :func:`inclusion_proof`, :func:`consistency_proof` — proofs over a list of leaf hashes (RFC 6962 §2.1.1-2).
* :func:`verify_inclusion`, :func:`verify_consistency` — RFC 9162 §2.1.3.2 / §2.1.4.2 verification, written after
  the transparency-dev reference so that its test vectors apply. They return ``False`` for any malformed input
  and never raise.
* :func:`root_from_inclusion` — the root an inclusion path implies (used to check batch seals).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
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

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_hash(leaf_hashes[:k]), root_hash(leaf_hashes[k:]))


class CompactRange:
    """Streaming root: append leaf hashes one at a time; memory is one hash per set bit of the size."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        self._stack.append((1, leaf))
        self.size += 1
        while len(self._stack) >= 2 and self._stack[-1][0] == self._stack[-2][0]:
            (size, right), (_, left) = self._stack.pop(), self._stack.pop()
            self._stack.append((2 * size, node_hash(left, right)))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"index {index} outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(leaf_hashes[:k], index), root_hash(leaf_hashes[k:])]
    return [*inclusion_proof(leaf_hashes[k:], index - k), root_hash(leaf_hashes[:k])]


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 6962 §2.1.2, with size2 = len(leaf_hashes)."""
    n = len(leaf_hashes)
    if not 0 <= size1 <= n:
        raise ValueError(f"size1 {size1} outside 0..{n}")
    if size1 in (0, n):
        return []
    return _subproof(size1, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root_hash(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root_hash(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root_hash(leaves[:k])]


# -- verification -----------------------------------------------------------------------------------
def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return type(value) is int and value >= 0


def _hashes(proof: object) -> list[bytes] | None:
    if proof is None:
        return []
    if isinstance(proof, (bytes, str)) or not isinstance(proof, Sequence):
        return None
    items = list(proof)
    return items if all(_is_hash(p) for p in items) else None


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Inner and border lengths of an inclusion proof for ``index`` in a tree of ``size``."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root implied by an inclusion proof, or None if the proof cannot belong to that position."""
    path = _hashes(proof)
    if path is None or not _is_hash(leaf) or not _is_size(index) or not _is_size(tree_size):
        return None
    if index >= tree_size:
        return None
    inner, border = _decompose(index, tree_size)
    if len(path) != inner + border:
        return None
    return _chain_border_right(_chain_inner(leaf, path[:inner], index), path[inner:])


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff ``proof`` shows the leaf at ``index`` in the tree of ``tree_size`` with ``root``."""
    if not _is_hash(root):
        return False
    computed = root_from_inclusion(leaf_hash, index, tree_size, proof)
    return computed is not None and computed == root


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    """True iff ``proof`` shows the tree (size1, root1) is a prefix of the tree (size2, root2)."""
    path = _hashes(proof)
    if path is None or not _is_size(size1) or not _is_size(size2) or not _is_hash(root1) or not _is_hash(root2):
        return False
    if size2 < size1:
        return False
    if size1 == size2:
        return not path and root1 == root2
    if size1 == 0:
        return not path
    if not path:
        return False
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = path[0], 1
    if len(path) != start + inner + border:
        return False
    rest = path[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        return False
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    return hash2 == root2
