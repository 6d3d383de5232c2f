"""ledger.merkle against transparency-dev's RFC 6962 vectors, the RFC's example tree, and itself on random trees."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 vectors from transparency-dev/merkle, copied in with their licence (tests/vectors/rfc6962/LICENSE).
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962"


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json")) if (VECTORS / kind).is_dir() else []
    if not files:  # fail loudly (see _load) rather than silently testing nothing
        return [pytest.param(None, id=f"{kind}-vectors-missing")]
    return [pytest.param(f, id=f.relative_to(VECTORS).as_posix()) for f in files]


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:
        pytest.fail(f"RFC 6962 test vectors not found under {VECTORS}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value, validate=True) if value else b""


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path | None) -> None:
    v = _load(path)
    ok = verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"]))
    assert ok is (not v["wantErr"]), v.get("desc")


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path | None) -> None:
    v = _load(path)
    ok = verify_consistency(v["size1"], v["size2"], _proof(v["proof"]), _b64(v["root1"]), _b64(v["root2"]))
    assert ok is (not v["wantErr"]), v.get("desc")


# -- the example tree of RFC 6962 / transparency-dev (its vectors are proofs over it) ---------------------------
RFC_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
RFC_LEAVES = [leaf_hash(e) for e in RFC_ENTRIES]
RFC_ROOTS = {  # MTH of the first n entries
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def test_hash_domains_and_empty_root() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == root_hash([])
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("n", sorted(RFC_ROOTS))
def test_roots_of_the_rfc_example_tree(n: int) -> None:
    assert root_hash(RFC_LEAVES[:n]).hex() == RFC_ROOTS[n]
    assert CompactRange(RFC_LEAVES[:n]).root().hex() == RFC_ROOTS[n]


def _happy(kind: str) -> list[Any]:
    return [p for p in _cases(kind) if p.values[0] is None or p.values[0].name == "happy-path.json"]


@pytest.mark.parametrize("path", _happy("inclusion"))
def test_our_inclusion_proofs_equal_the_reference_happy_paths(path: Path | None) -> None:
    v = _load(path)
    n, i = v["treeSize"], v["leafIdx"]
    leaves = RFC_LEAVES[:n]
    assert leaves[i] == _b64(v["leafHash"])
    assert root_hash(leaves) == _b64(v["root"])
    assert inclusion_proof(leaves, i) == _proof(v["proof"])


@pytest.mark.parametrize("path", _happy("consistency"))
def test_our_consistency_proofs_equal_the_reference_happy_paths(path: Path | None) -> None:
    v = _load(path)
    leaves = RFC_LEAVES[: v["size2"]]
    assert root_hash(leaves[: v["size1"]]) == _b64(v["root1"])
    assert root_hash(leaves) == _b64(v["root2"])
    assert consistency_proof(leaves, v["size1"]) == _proof(v["proof"])


# -- our proofs against our verifiers ---------------------------------------------------------------------------
def _leaves(n: int) -> list[bytes]:
    """Deterministic, distinct leaf hashes for a tree of ``n`` leaves."""
    return [leaf_hash(f"entry-{n}-{i}".encode()) for i in range(n)]


def _flip(h: bytes, bit: int = 0) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _flipped(proof: Sequence[bytes], k: int, bit: int) -> list[bytes]:
    return [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]


SEED = st.integers(0, 2**32)
H = hashlib.sha256(b"h").digest()  # an arbitrary well-formed hash


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 10_000), i=SEED, j=SEED, k=SEED, bit=st.integers(0, 255))
@example(size=10_000, i=9_999, j=0, k=3, bit=255)
@example(size=1, i=0, j=0, k=0, bit=0)
def test_inclusion_proofs_verify_and_tampering_fails(size: int, i: int, j: int, k: int, bit: int) -> None:
    leaves = _leaves(size)
    root = root_hash(leaves)
    index = i % size
    proof = inclusion_proof(leaves, index)
    leaf = leaves[index]
    assert verify_inclusion(leaf, index, size, proof, root)
    assert root_from_inclusion(leaf, index, size, proof) == root
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    assert not verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, size, size, proof, root)
    if size > 1:
        other = (index + 1 + j % (size - 1)) % size  # any index but ours
        assert not verify_inclusion(leaf, other, size, proof, root)
        assert not verify_inclusion(leaves[other], index, size, proof, root)
        assert not verify_inclusion(leaf, index, size, _flipped(proof, k % len(proof), bit), root)
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not verify_inclusion(leaf, index, size, [*proof, root], root)
    # One level above the root, with a root to match (RFC 9162 §2.1.3.2 step 4a: "if sn is 0 ... fail").
    assert not verify_inclusion(leaf, index, size, [*proof, H], node_hash(H, root))
    assert root_from_inclusion(leaf, index, size, [*proof, H]) is None


@settings(max_examples=60, deadline=None)
@given(size2=st.integers(1, 10_000), m=SEED, j=SEED, k=SEED, bit=st.integers(0, 255))
@example(size2=10_000, m=6_001, j=0, k=5, bit=255)
@example(size2=10_000, m=8_192, j=1, k=0, bit=0)
def test_consistency_proofs_verify_and_tampering_fails(size2: int, m: int, j: int, k: int, bit: int) -> None:
    leaves = _leaves(size2)
    size1 = m % (size2 + 1)
    root1, root2 = root_hash(leaves[:size1]), root_hash(leaves)
    assert CompactRange(leaves[:size1]).root() == root1
    proof = consistency_proof(leaves, size1)
    assert verify_consistency(size1, size2, proof, root1, root2)
    assert not verify_consistency(size1, size2, [*proof, root2], root1, root2)
    # One level above both roots, with roots to match (RFC 9162 §2.1.4.2 step 6a).
    assert not verify_consistency(size1, size2, [*proof, H], node_hash(H, root1), node_hash(H, root2))
    if 0 < size1 < size2:
        assert not verify_consistency(size1, size2, proof, _flip(root1, bit), root2)
        assert not verify_consistency(size1, size2, proof, root1, _flip(root2, bit))
        assert not verify_consistency(size1, size2, proof, root2, root1)
        assert not verify_consistency(size1, size2, [], root1, root2)
        assert not verify_consistency(size1, size2, proof[:-1], root1, root2)
        assert not verify_consistency(size1, size2, _flipped(proof, k % len(proof), bit), root1, root2)
        other = 1 + (size1 + j % (size2 - 1)) % size2  # any size1 in 1..size2 but ours
        assert not verify_consistency(other, size2, proof, root1, root2)
    if size1 == size2:
        assert not verify_consistency(size1, size2, proof, root1, _flip(root2, bit))


def test_size2_below_size1_fails_even_when_the_hashes_chain() -> None:
    # Without the size2 < size1 guard, steps 3-7 of RFC 9162 §2.1.4.2 accept this forged (3, 2) "proof".
    c = hashlib.sha256(b"c").digest()
    assert not verify_consistency(3, 2, [H, c], H, node_hash(H, c))


def test_every_proof_of_every_small_tree() -> None:
    n_max = 33
    leaves = _leaves(n_max)
    roots = [root_hash(leaves[:n]) for n in range(n_max + 1)]
    for n in range(1, n_max + 1):
        for i in range(n):
            proof = inclusion_proof(leaves[:n], i)
            assert verify_inclusion(leaves[i], i, n, proof, roots[n]), (i, n)
            assert all(not verify_inclusion(leaves[i], j, n, proof, roots[n]) for j in range(n) if j != i), (i, n)
    for n in range(n_max + 1):
        for m in range(n + 1):
            proof = consistency_proof(leaves[:n], m)
            assert verify_consistency(m, n, proof, roots[m], roots[n]), (m, n)
            assert not verify_consistency(n + 1, n, proof, roots[m], roots[n])


def test_compact_range_matches_the_recursive_root_at_every_size() -> None:
    leaves = _leaves(300)
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT and len(cr) == 0
    for i, h in enumerate(leaves, 1):
        cr.append(h)
        assert cr.size == i
        assert cr.root() == root_hash(leaves[:i])
        assert len(cr._stack) == i.bit_count()  # O(log n) memory: one subtree per set bit of the size


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 5_000))
def test_compact_range_matches_root_hash(size: int) -> None:
    leaves = _leaves(size)
    assert CompactRange(leaves).root() == root_hash(leaves)


def test_generators_reject_bad_arguments() -> None:
    leaves = _leaves(4)
    for bad_index in (-1, 4):
        with pytest.raises(ValueError):
            inclusion_proof(leaves, bad_index)
    with pytest.raises(ValueError):
        consistency_proof(leaves, 5)
    with pytest.raises(TypeError):
        root_hash([b"not a hash"])
    with pytest.raises(TypeError):
        CompactRange().append(b"short")


# -- malformed input: False, never an exception -----------------------------------------------------------------


class _Hostile(Sequence[bytes]):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: Any) -> Any:
        raise RuntimeError("hostile")


@pytest.mark.parametrize(
    "args",
    [
        (b"short", 0, 1, [], H),
        (H, 0, 1, [], b"short"),
        (H, -1, 1, [], H),
        (H, 1, 1, [], H),
        (H, 0, 0, [], H),
        (H, 0, -1, [], H),
        (H, True, 2, [H], H),
        (H, 0, 1.0, [], H),
        (H, "0", 1, [], H),
        (H, 0, 2, ["not bytes"], H),
        (H, 0, 2, [bytearray(H)], H),
        (H, 0, 2, [H + b"\x00"], H),
        (H, 0, 2, H, H),
        (H, 0, 1, None, H),
        (H, 0, 2, _Hostile(), H),
        (H, 0, 2**64 - 1, [H] * 64, H),
        ("str", 0, 1, [], H),
        (None, 0, 1, [], H),
        (H, 0, 1, [], EMPTY_ROOT),  # well formed, but the root is not the leaf
    ],
)
def test_malformed_inclusion_input_is_false(args: tuple[Any, ...]) -> None:
    assert verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (2, 1, [], H, H),
        (-1, 1, [], H, H),
        (0, -1, [], H, H),
        (1, 2, [b"short"], H, H),
        (1, 2, None, H, H),
        (1, 2, _Hostile(), H, H),
        (1, 2, H, H, H),
        (1, 1, [H], H, H),
        (1, 1, [], H, b"short"),
        (1, 1, [], H, hashlib.sha256(b"other").digest()),
        (0, 5, [H], H, H),
        (0, 0, [], b"", b""),
        (True, 2, [H], H, H),
        (1.0, 2, [H], H, H),
        (1, 2**64, [H] * 70, H, H),
        (3, 8, [], H, H),
    ],
)
def test_malformed_consistency_input_is_false(args: tuple[Any, ...]) -> None:
    assert verify_consistency(*args) is False
