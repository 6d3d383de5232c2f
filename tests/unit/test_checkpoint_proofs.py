"""Proof documents and checkpoint chains built by ledger.audit.checkpoints, checked by its own offline verifier
on random trees of up to 10,000 leaves — and every kind of tampering rejected."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.app.checkpoints import Checkpoint, statement
from ledger.app.holds import check_extends
from ledger.audit.proofs import check_proof, proof_document
from ledger.errors import CheckpointFork, InputError, IntegrityError
from ledger.log.signing import Signer
from ledger.merkle import EMPTY_ROOT, consistency_proof, leaf_hash, root_hash

SIGNER = Signer.generate("131016")
OTHER = Signer.generate("131016")
TIME = "2026-11-25T12:00:00+00:00"


def _headers(n: int, salt: str = "") -> list[bytes]:
    return [json.dumps({"id": f"{i:032x}", "n": i, "salt": salt}, sort_keys=True).encode() for i in range(n)]


def _checkpoint(leaves: list[bytes], signer: Signer = SIGNER, prev: Checkpoint | None = None) -> Checkpoint:
    root = root_hash(leaves)
    sig = signer.sign(statement("131016", len(leaves), root, TIME, signer.key_id))
    prev_size, prev_root = (prev.tree_size, prev.root) if prev else (0, EMPTY_ROOT)
    proof = tuple(consistency_proof(leaves, prev_size))
    return Checkpoint("131016", len(leaves), root, TIME, signer.key_id, sig, prev_size, prev_root, proof)


def _doc(size: int, index: int) -> dict[str, Any]:
    headers = _headers(size)
    leaves = [leaf_hash(h) for h in headers]
    return proof_document(_checkpoint(leaves), leaves, index, headers[index], SIGNER.public_raw.hex())


def _rejected(doc: Any, code: str = "") -> None:
    with pytest.raises(IntegrityError) as err:
        check_proof(doc)
    assert not code or err.value.code == code


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 10_000), i=st.integers(0, 2**32), k=st.integers(0, 2**32))
@example(size=10_000, i=9_999, k=0)
@example(size=1, i=0, k=0)
def test_our_proofs_verify_offline_and_every_tampering_is_rejected(size: int, i: int, k: int) -> None:
    index = i % size
    doc = _doc(size, index)
    assert check_proof(doc)["leaf_index"] == index
    assert check_proof(json.loads(json.dumps(doc)), SIGNER.public_raw.hex())["ok"]  # survives a file round trip

    if doc["proof"]:
        bad = copy.deepcopy(doc)
        j = k % len(bad["proof"])
        bad["proof"][j] = bytes(32).hex() if bad["proof"][j] != bytes(32).hex() else "11" * 32
        _rejected(bad, "bad_proof")
        bad = copy.deepcopy(doc)
        bad["proof"] = bad["proof"][:-1]
        _rejected(bad, "bad_proof")
    if size > 1:
        bad = copy.deepcopy(doc)
        bad["leaf_index"] = (index + 1 + k % (size - 1)) % size
        _rejected(bad, "bad_proof")
    bad = copy.deepcopy(doc)  # another event claimed under the same path
    other = json.dumps({"id": "f" * 32, "n": -1}, sort_keys=True)
    bad["header"], bad["event_id"], bad["leaf_hash"] = other, "f" * 32, leaf_hash(other.encode()).hex()
    _rejected(bad, "bad_proof")
    bad = copy.deepcopy(doc)  # a bigger tree claimed without a new signature
    bad["tree_size"] = bad["checkpoint"]["tree_size"] = size + 1
    _rejected(bad, "bad_checkpoint")


def test_a_forged_checkpoint_or_a_swapped_key_is_rejected() -> None:
    doc = _doc(100, 42)
    forged = _checkpoint([leaf_hash(h) for h in _headers(100, "x")], OTHER)
    bad = copy.deepcopy(doc)
    bad["checkpoint"]["root"] = forged.root.hex()
    bad["root"] = forged.root.hex()
    _rejected(bad, "bad_checkpoint")  # the root changed under the agency's signature
    bad = copy.deepcopy(doc)
    bad["checkpoint"] = forged.to_json()
    bad["public_key"] = OTHER.public_raw.hex()
    _rejected(bad)  # signed, but by a key whose id is not the one named... or the roots differ
    bad = copy.deepcopy(doc)
    bad["public_key"] = OTHER.public_raw.hex()
    _rejected(bad, "bad_checkpoint")  # the key does not match the key id
    with pytest.raises(IntegrityError):
        check_proof(doc, OTHER.public_raw.hex())  # the auditor pins the key they trust


@pytest.mark.parametrize("doc", [None, [], {"format": "other"}, {"format": "flagledger-inclusion-proof/v1"}])
def test_malformed_documents_are_input_errors(doc: Any) -> None:
    with pytest.raises(InputError):
        check_proof(doc)


@settings(max_examples=25, deadline=None)
@given(size2=st.integers(1, 10_000), m=st.integers(0, 2**32), d=st.integers(0, 2**32))
@example(size2=10_000, m=8_192, d=5)
def test_checkpoint_chains_extend_and_forks_are_caught(size2: int, m: int, d: int) -> None:
    leaves = [leaf_hash(h) for h in _headers(size2)]
    size1 = m % (size2 + 1)
    first = _checkpoint(leaves[:size1])
    second = _checkpoint(leaves, prev=first)
    check_extends(None, first)
    check_extends(first, second)
    # a fork: the same agency signs a history that differs at one leaf below size1
    if size1 > 0:
        forked = list(leaves)
        forked[d % size1] = leaf_hash(b"rewritten")
        with pytest.raises(CheckpointFork):
            check_extends(first, _checkpoint(forked, prev=_checkpoint(forked[:size1])))
        # or claims the true predecessor with a proof from its own rewritten history
        lie = _checkpoint(forked, prev=first)
        with pytest.raises(CheckpointFork):
            check_extends(first, lie)
    with pytest.raises(CheckpointFork):
        check_extends(None, second if size1 else _checkpoint(leaves, prev=_checkpoint(leaves[:1])))
