"""The sparse Merkle map the hub's heads commit to (ledger/linkage/flag_map.py).

Threat: a malicious hub (issue 20) that shows a provider or a holder a leaf other than the one its signed root
commits to — a flagged person's leaf replaced by "absent", a sibling or the bitmap bent to fit another root, a
proof for one key offered for another. Every such proof must fail against the root; every honest one verify.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InputError
from ledger.linkage.flag_map import (
    DEPTH,
    EMPTY,
    FlagEntry,
    MapProof,
    SparseMerkleMap,
    holding_key,
    leaf_hash,
    map_key,
    node_hash,
    root_from_proof,
    verify,
)

keys = st.binary(min_size=32, max_size=32)
values = st.binary(min_size=0, max_size=8)
# keys sharing long prefixes, so proofs run deep and siblings sit at every height
clustered = st.builds(
    lambda head, tail: head + tail, st.sampled_from([b"\x00" * 31, b"\xff" * 31]), st.binary(min_size=1, max_size=1)
)


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """The root written the slow, obvious way, sharing nothing with the map's cache or its walk."""

    def subtree(height: int, prefix: int, ks: list[int]) -> bytes:
        if not ks:
            return EMPTY[height]
        if height == 0:
            [k] = ks
            key = k.to_bytes(32, "big")
            return leaf_hash(key, items[key])
        half = height - 1
        left = [k for k in ks if not (k >> half) & 1]
        right = [k for k in ks if (k >> half) & 1]
        return node_hash(subtree(half, 2 * prefix, left), subtree(half, 2 * prefix + 1, right))

    return subtree(DEPTH, 0, [int.from_bytes(k, "big") for k in items])


def test_the_empty_map_and_one_leaf_match_the_definitions() -> None:
    m = SparseMerkleMap()
    assert m.root() == EMPTY[DEPTH] == reference_root({})
    key = hashlib.sha256(b"x").digest()
    m.set(key, b"v")
    assert m.root() == reference_root({key: b"v"})
    # three hash domains: a leaf, a node and an empty subtree never share an input shape
    assert EMPTY[0] != leaf_hash(b"\x00" * 32, b"") and EMPTY[1] == node_hash(EMPTY[0], EMPTY[0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(keys, clustered), values), max_size=25),
    st.lists(st.one_of(keys, clustered), max_size=6),
)
def test_after_random_updates_every_proof_verifies_and_any_tampering_fails(
    updates: list[tuple[bytes, bytes]], removed: list[bytes]
) -> None:
    m = SparseMerkleMap()
    expected: dict[bytes, bytes] = {}
    for key, value in updates:
        m.set(key, value)
        expected[key] = value
        m.root()  # roots read between updates: the cache must follow every change
    for key in removed:
        m.delete(key)
        expected.pop(key, None)
    root = m.root()
    assert root == reference_root(expected)
    absent = [k for k in (hashlib.sha256(bytes([i])).digest() for i in range(4)) if k not in expected]
    for key in [*expected, *removed, *absent]:
        proof = m.prove(key)
        assert proof.value == expected.get(key)
        assert verify(proof, root), "an honest proof verifies"
        assert len(proof.siblings) <= DEPTH
        for i in range(len(proof.siblings)):  # any sibling changed
            bent = list(proof.siblings)
            bent[i] = hashlib.sha256(bent[i]).digest()
            assert not verify(replace(proof, siblings=tuple(bent)), root)
        # the leaf: a member claimed absent, a value changed, an absent key claimed present
        if proof.value is not None:
            assert not verify(replace(proof, value=None), root)
            assert not verify(replace(proof, value=proof.value + b"!"), root)
            # a member's proof does not prove another key (the key is inside the leaf)
            other = bytes([key[0] ^ 0x80]) + key[1:]
            assert not verify(replace(proof, key=other), root)
        else:
            assert not verify(replace(proof, value=b""), root)


def test_the_root_depends_on_the_contents_only() -> None:
    items = [(os.urandom(32), os.urandom(4)) for _ in range(60)]
    a, b = SparseMerkleMap(items), SparseMerkleMap(reversed(items))
    assert a.root() == b.root()
    before = a.root()
    a.set(items[0][0], b"changed")
    assert a.root() != before
    a.set(items[0][0], items[0][1])
    assert a.root() == before
    extra = os.urandom(32)
    a.set(extra, b"")
    a.delete(extra)
    assert a.root() == before


def test_a_bent_bitmap_or_a_malformed_proof_fails_without_raising() -> None:
    m = SparseMerkleMap([(os.urandom(32), b"v") for _ in range(20)])
    root = m.root()
    key = next(iter(m._values)).to_bytes(32, "big")
    proof = m.prove(key)
    bits = int.from_bytes(proof.present, "big")
    low = (bits & -bits).bit_length() - 1  # the lowest present sibling, moved one height down: same count
    moved = bits & ~(1 << low) | (1 << (low - 1)) if low > 0 else bits & ~1 | 2
    assert moved.bit_count() == len(proof.siblings)
    assert not verify(replace(proof, present=moved.to_bytes(32, "big")), root)
    for bad in (
        replace(proof, present=b"\x00" * 31),
        replace(proof, siblings=proof.siblings[:-1]),
        replace(proof, siblings=(*proof.siblings[:-1], b"short")),
        replace(proof, key=b"short"),
        MapProof(key, "text", proof.present, proof.siblings),  # type: ignore[arg-type]
    ):
        assert root_from_proof(bad) is None and not verify(bad, root)


def test_proofs_are_compressed_to_about_log2_n_hashes() -> None:
    m = SparseMerkleMap([(os.urandom(32), b"v") for _ in range(1024)])
    sizes = [len(m.prove(os.urandom(32)).siblings) for _ in range(50)]
    assert max(sizes) <= 24 and sum(sizes) / len(sizes) < 14  # ~10 for 1024 random keys, not 256


def test_flag_entries_and_keys() -> None:
    both = FlagEntry(frozenset({"NON_DISCLOSURE", "NO_AUTO_RESPONSE"}))
    assert FlagEntry.decode(both.encode()) == both and len(both.encode()) == 5
    with pytest.raises(InputError):
        FlagEntry(frozenset({"SOMETHING"}))
    with pytest.raises(InputError):
        FlagEntry.decode(b"FLM1\x04")
    person = map_key("h" + "0" * 64)
    assert holding_key(person, "131016", "a1") != holding_key(person, "131024", "a1") != person
    assert holding_key(person, "131016", "a1") != holding_key(person, "131016", "a2")
    with pytest.raises(InputError):
        SparseMerkleMap().set(b"short", b"v")
