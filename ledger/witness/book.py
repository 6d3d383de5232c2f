"""What a witness holds and finds: the hub's map heads and every agency's own tree heads (issue #20).

A :class:`WitnessBook` is shown heads three ways — announced by the hub (its map heads, with the log's
consistency proof), forwarded by the hub (the tree head an agency showed the hub, the agency's signature inside),
sent by an agency itself (relayed) — and gossiped by other witnesses. It finds:

* ``hub_fork`` / ``hub_rollback``: the hub's, by :class:`ledger.linkage.witness.Witness` (its rules);
* ``checkpoint_fork``: two heads signed by one agency for one log size with different roots — the agency (or an
  insider rewriting its log) showed the hub one log and the witness another; or a head whose log does not
  extend the one before it (the consistency proof the agency sent fails);
* ``checkpoint_rollback``: an agency showing a smaller log than it showed before.

Every finding carries the two signed heads as they travelled (:class:`Finding`), which the accused's peers check
again with :func:`check_finding` and the signers' keys alone. A head nobody signed is refused, never kept: no one
can frame another party. State is handed to a :class:`WitnessKeep` as it changes (``ledger.witness.store``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import Code, FlagLedgerError
from ledger.linkage.hub_wire import decode_head, encode_head
from ledger.linkage.map_heads import MapHead
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.tree_heads import TreeHead, WitnessIncident, decode_tree_head, encode_tree_head
from ledger.linkage.witness import Evidence, Witness, check_evidence
from ledger.merkle import HASH_SIZE, verify_consistency

__all__ = ["Finding", "Kept", "WitnessBook", "WitnessKeep", "check_finding"]

HUB_CODES = (Code.HUB_FORK, Code.HUB_ROLLBACK, Code.HEAD_SKIPPED)


@dataclass(frozen=True)
class Finding:
    """Two signed heads of ``accused`` that cannot both be true (and the proof that failed, if one did)."""

    code: str
    accused: str
    first: bytes  # the head held first, as it travelled (encode_head or encode_tree_head)
    second: bytes
    note: str
    proof: tuple[bytes, ...] = ()

    def evidence(self) -> bytes:
        parts = (self.first, self.second, b"".join(self.proof))
        return b"".join(struct.pack(">I", len(p)) + p for p in parts)

    def digest(self) -> str:
        return hashlib.sha256(self.code.encode() + b"\x00" + self.evidence()).hexdigest()

    def incident(self) -> WitnessIncident:
        return WitnessIncident(self.code, self.accused, self.evidence().hex(), self.note[:500])

    @classmethod
    def of(cls, incident: WitnessIncident) -> Finding:
        raw, at = bytes.fromhex(incident.evidence), 0
        parts: list[bytes] = []
        while at < len(raw) and len(parts) < 3:
            (n,) = struct.unpack_from(">I", raw, at) if at + 4 <= len(raw) else (len(raw),)
            parts.append(raw[at + 4 : at + 4 + n])
            at += 4 + n
        if len(parts) != 3 or at != len(raw) or len(parts[2]) % HASH_SIZE:
            raise ValueError("a witness incident's evidence is two heads and a proof")
        proof = tuple(parts[2][i : i + HASH_SIZE] for i in range(0, len(parts[2]), HASH_SIZE))
        return cls(incident.code, incident.accused, parts[0], parts[1], incident.note, proof)


def _from_evidence(evidence: Evidence) -> Finding:
    a, b = evidence.heads
    return Finding(evidence.code, "hub", encode_head(a), encode_head(b), evidence.note, evidence.consistency)


def check_finding(finding: Finding, hub_key: Ed25519PublicKey, keys: SenderKeys) -> bool:
    """True iff the finding's heads are signed by the accused and show what its code says (for a failed proof
    and a rollback the witness's word is part of it, as in ``ledger.linkage.witness``). Never raises."""
    try:
        if finding.code in HUB_CODES:
            heads = (decode_head(finding.first), decode_head(finding.second))
            return finding.accused == "hub" and check_evidence(
                Evidence(finding.code, heads, finding.note, consistency=finding.proof), hub_key
            )
        a, b = decode_tree_head(finding.first).verify(keys), decode_tree_head(finding.second).verify(keys)
        if a.origin != finding.accused or b.origin != finding.accused:
            return False
        if finding.code == Code.CHECKPOINT_ROLLBACK:
            return b.size < a.size
        if finding.code == Code.CHECKPOINT_FORK:
            if a.size == b.size:
                return a.root != b.root
            old, new = (a, b) if a.size < b.size else (b, a)
            return not verify_consistency(old.size, new.size, list(finding.proof), old.root, new.root)
    except (FlagLedgerError, ValueError, TypeError):
        return False
    return False


@dataclass
class Kept:
    """What a :class:`WitnessKeep` gives back at start."""

    hub_heads: list[MapHead] = field(default_factory=list)
    hub_latest: int | None = None
    tree_heads: list[TreeHead] = field(default_factory=list)
    tree_latest: dict[str, int] = field(default_factory=dict)  # origin → size of the newest head it showed


class WitnessKeep(Protocol):
    def load(self) -> Kept: ...

    def hub_head(self, head: MapHead, latest: bool) -> None: ...

    def tree_head(self, head: TreeHead, latest: bool) -> None: ...


@dataclass
class WitnessBook:
    hub_key: Ed25519PublicKey
    keep: WitnessKeep | None = None
    hub: Witness = field(init=False)
    trees: dict[tuple[str, int], TreeHead] = field(default_factory=dict)
    latest: dict[str, TreeHead] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hub = Witness(self.hub_key)
        if self.keep is None:
            return
        kept = self.keep.load()
        for h in sorted(kept.hub_heads, key=lambda h: h.seq):
            self.hub.restore(h)
        self.hub.latest = None if kept.hub_latest is None else self.hub.by_seq.get(kept.hub_latest)
        self.trees = {(h.origin, h.size): h for h in kept.tree_heads}
        self.latest = {o: self.trees[(o, s)] for o, s in kept.tree_latest.items() if (o, s) in self.trees}

    # -- the hub's map heads ---------------------------------------------------------------------------------
    def hub_announced(self, head: MapHead, consistency: Sequence[bytes] = ()) -> Finding | None:
        """A head the hub announced to this witness (signature checked: ``bad_signature`` otherwise)."""
        known = head.seq in self.hub.by_seq
        evidence = self.hub.observe(head, consistency)
        if self.keep is not None and not known and self.hub.by_seq.get(head.seq) == head:
            self.keep.hub_head(head, self.hub.latest == head)
        return None if evidence is None else _from_evidence(evidence)

    def hub_gossiped(self, head: MapHead) -> Finding | None:
        """A head another witness was shown: another body for a sequence held here is a fork."""
        evidence = self.hub.cross_check(head)
        return None if evidence is None else _from_evidence(evidence)

    # -- agencies' own tree heads ----------------------------------------------------------------------------
    def _fork(self, known: TreeHead, head: TreeHead) -> Finding | None:
        if known.root == head.root:
            return None
        note = f"two heads of {head.origin} for log size {head.size}"
        return Finding(Code.CHECKPOINT_FORK, head.origin, encode_tree_head(known), encode_tree_head(head), note)

    def tree_shown(
        self, head: TreeHead, keys: SenderKeys, prev_size: int = 0, consistency: Sequence[bytes] = ()
    ) -> Finding | None:
        """A head an agency showed the hub (forwarded) or this witness (relayed), with its consistency proof from
        the head it published before."""
        head.verify(keys)
        known, last = self.trees.get((head.origin, head.size)), self.latest.get(head.origin)
        if known is not None:
            forked = self._fork(known, head)
            if forked is not None or (last is not None and last.size >= head.size):
                return forked  # a fork, or the same head again (by the other path, or replayed)
        if last is not None and head.size < last.size:
            self._hold(head, latest=False)
            note = f"{head.origin} showed log size {head.size} after {last.size}"
            return Finding(Code.CHECKPOINT_ROLLBACK, head.origin, encode_tree_head(last), encode_tree_head(head), note)
        prev = self.trees.get((head.origin, prev_size)) if prev_size else None
        if prev is not None and not verify_consistency(prev.size, head.size, list(consistency), prev.root, head.root):
            self._hold(head, latest=False)
            note = f"{head.origin}'s log of size {head.size} does not extend its log of size {prev.size}"
            first, second = encode_tree_head(prev), encode_tree_head(head)
            return Finding(Code.CHECKPOINT_FORK, head.origin, first, second, note, tuple(consistency))
        self._hold(head, latest=True)
        return None

    def tree_gossiped(self, head: TreeHead, keys: SenderKeys) -> Finding | None:
        """An agency's head another witness holds: another root for a size held here is a fork."""
        head.verify(keys)
        known = self.trees.get((head.origin, head.size))
        if known is not None:
            return self._fork(known, head)
        self._hold(head, latest=False)  # held: the agency showing this size otherwise later is caught
        return None

    def _hold(self, head: TreeHead, latest: bool) -> None:
        self.trees.setdefault((head.origin, head.size), head)
        if latest:
            self.latest[head.origin] = head
        if self.keep is not None:
            self.keep.tree_head(head, latest)

    def view(self) -> tuple[bytes, list[TreeHead]]:
        """What this witness gossips: its newest hub head and each agency's newest head."""
        hub = b"" if self.hub.latest is None else encode_head(self.hub.latest)
        return hub, [self.latest[o] for o in sorted(self.latest)]
