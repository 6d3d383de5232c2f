"""Our RFC 6962 Merkle code against transparency-dev's vectors, and against itself on random trees."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "testvectors" / "rfc6962"


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(f, id=str(f.relative_to(VECTORS))) for f in files] or [
        pytest.param(None, id=f"missing-{kind}")
    ]


def _b(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:
        pytest.fail(f"RFC 6962 test vectors not found under {VECTORS} (the shared/ folder beside the checkout)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path | None) -> None:
    v = _load(path)
    proof = [_b(p) for p in (v["proof"] or [])]
    ok = verify_inclusion(_b(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b(v["root"]))
    assert ok is (not v["wantErr"]), v.get("desc")


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path | None) -> None:
    v = _load(path)
    proof = [_b(p) for p in (v["proof"] or [])]
    ok = verify_consistency(v["size1"], v["size2"], proof, _b(v["root1"]), _b(v["root2"]))
    assert ok is (not v["wantErr"]), v.get("desc")


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"entry-{n}-{i}".encode()) for i in range(n)]


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 10_000), data=st.data())
def test_our_inclusion_proofs_verify_and_tampering_fails(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    root = root_hash(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof, _flip(root))
    if size > 1:
        assert not verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, bad, root)


@settings(max_examples=60, deadline=None)
@given(size2=st.integers(1, 10_000), data=st.data())
def test_our_consistency_proofs_verify_and_tampering_fails(size2: int, data: st.DataObject) -> None:
    leaves = _leaves(size2)
    size1 = data.draw(st.integers(1, size2))
    root1, root2 = root_hash(leaves[:size1]), root_hash(leaves)
    proof = consistency_proof(leaves, size1)
    assert verify_consistency(size1, size2, proof, root1, root2)
    assert not verify_consistency(size1, size2, proof, _flip(root1), root2)
    assert not verify_consistency(size1, size2, proof, root1, _flip(root2))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]
        assert not verify_consistency(size1, size2, bad, root1, root2)


def test_compact_range_matches_the_recursive_root_at_every_size() -> None:
    leaves = _leaves(300)
    cr = CompactRange()
    assert cr.root() == hashlib.sha256(b"").digest()
    for i, h in enumerate(leaves, 1):
        cr.append(h)
        assert cr.root() == root_hash(leaves[:i])


@pytest.mark.parametrize(
    "args",
    [
        (b"short", 0, 1, [], b"x" * 32),
        (b"x" * 32, -1, 1, [], b"x" * 32),
        (b"x" * 32, 1, 1, [], b"x" * 32),
        (b"x" * 32, 0, 2, ["not bytes"], b"x" * 32),
        (b"x" * 32, 0, 2, b"x" * 32, b"x" * 32),
        ("str", 0, 1, [], b"x" * 32),
    ],
)
def test_malformed_inclusion_input_is_false_never_an_exception(args: tuple[Any, ...]) -> None:
    assert verify_inclusion(*args) is False


def test_malformed_consistency_input_is_false_never_an_exception() -> None:
    h = b"x" * 32
    assert verify_consistency(2, 1, [], h, h) is False
    assert verify_consistency(-1, 1, [], h, h) is False
    assert verify_consistency(1, 2, [b"short"], h, h) is False
    assert verify_consistency(1, 2, None, h, h) is False  # type: ignore[arg-type]
    assert verify_consistency(1, 1, [h], h, h) is False
