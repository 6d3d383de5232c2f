"""Inclusion proofs: one event's path to the root of a signed checkpoint, as a JSON document an auditor files
and anyone checks offline with the agency's public key (:func:`check_proof`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ledger.app.checkpoints import Checkpoint, latest_checkpoint
from ledger.errors import InputError, IntegrityError, NotFoundError
from ledger.merkle import inclusion_proof, leaf_hash, root_hash, verify_inclusion

if TYPE_CHECKING:
    from ledger.app import FlagLedger

__all__ = ["PROOF_FORMAT", "build_proof", "check_proof", "proof_document"]

PROOF_FORMAT = "flagledger-inclusion-proof/v1"


def build_proof(
    app: FlagLedger, *, event_id: str | None = None, position: int | None = None, agency: str | None = None
) -> dict[str, Any]:
    """An inclusion proof of one event (by envelope event id or log position) against the latest checkpoint."""
    if (event_id is None) == (position is None):
        raise InputError("name the event by its event id or by its log position")
    cp = latest_checkpoint(app, agency)
    leaves: list[bytes] = []
    index: int | None = None
    header = b""
    for pos, _, env in app.envelopes():
        if len(leaves) == cp.tree_size:
            break
        if (event_id is not None and env.header.event_id == event_id.replace("-", "")) or pos == position:
            index, header = len(leaves), env.header_bytes
        leaves.append(env.leaf_hash)
    if len(leaves) < cp.tree_size:
        raise IntegrityError(
            f"the log holds {len(leaves)} events but the checkpoint covers {cp.tree_size}: "
            "run `flagledger audit verify`",
            code="truncated",
        )
    if index is None:
        raise NotFoundError(
            f"event {event_id or position} is not among the {cp.tree_size} events of the latest checkpoint; "
            "if it is newer, run `flagledger audit checkpoint` first"
        )
    if root_hash(leaves) != cp.root:
        raise IntegrityError(
            "the log no longer matches the latest checkpoint: run `flagledger audit verify`",
            code="checkpoint_mismatch",
        )
    return proof_document(cp, leaves, index, header, app.keyring.get(cp.key_id).public_hex)


def proof_document(
    cp: Checkpoint, leaves: Sequence[bytes], index: int, header: bytes, public_hex: str
) -> dict[str, Any]:
    """The JSON an auditor files: the event header, its inclusion path, the signed checkpoint and its key."""
    return {
        "format": PROOF_FORMAT,
        "event_id": json.loads(header)["id"],
        "header": header.decode(),
        "leaf_index": index,
        "leaf_hash": leaf_hash(header).hex(),
        "tree_size": cp.tree_size,
        "proof": [h.hex() for h in inclusion_proof(leaves, index)],
        "root": cp.root.hex(),
        "checkpoint": cp.to_json(),
        "public_key": public_hex,
    }


def check_proof(doc: Any, expected_public_key: str | None = None) -> dict[str, Any]:
    """Verify a proof document offline: the checkpoint's signature, then the event's inclusion under its root.

    Raises IntegrityError (code ``bad_proof`` / ``bad_checkpoint``) naming what failed; InputError if malformed.
    """
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise InputError(f"not a flagledger inclusion proof (expected format {PROOF_FORMAT})")
    cp = Checkpoint.from_json(doc.get("checkpoint"))
    public = doc.get("public_key")
    if not isinstance(public, str):
        raise InputError("the proof carries no public_key")
    if expected_public_key is not None and public.lower() != expected_public_key.lower():
        raise IntegrityError("the proof is signed by a different key than the one you trust", code="bad_checkpoint")
    cp.check_signature(public)
    try:
        index, size = doc["leaf_index"], doc["tree_size"]
        leaf = bytes.fromhex(doc["leaf_hash"])
        root = bytes.fromhex(doc["root"])
        path = [bytes.fromhex(h) for h in doc["proof"]]
        header = doc.get("header")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed proof: {exc}") from exc
    if size != cp.tree_size or root != cp.root:
        raise IntegrityError("the proof's tree size or root is not the signed checkpoint's", code="bad_proof")
    if header is not None:
        if not isinstance(header, str) or leaf_hash(header.encode()) != leaf:
            raise IntegrityError("the event header does not hash to the leaf hash", code="bad_proof")
        try:
            if json.loads(header).get("id") != doc.get("event_id"):
                raise IntegrityError("the event id is not the header's", code="bad_proof")
        except ValueError as exc:
            raise IntegrityError("the event header is not JSON", code="bad_proof") from exc
    if not verify_inclusion(leaf, index, size, path, root):
        raise IntegrityError(
            f"the inclusion proof does not lead from leaf {index} to the checkpoint root", code="bad_proof"
        )
    return {
        "ok": True,
        "event_id": doc.get("event_id"),
        "leaf_index": index,
        "tree_size": size,
        "root": root.hex(),
        "origin": cp.origin,
        "key_id": cp.key_id,
        "checkpoint_time": cp.time,
        "note": "the signing key must be one you trust (compare key_id/public_key with the agency's, out of band)",
    }
