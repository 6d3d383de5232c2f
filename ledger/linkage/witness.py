"""Witnessing the hub's heads: forks and rollbacks found, with the hub's own signatures as evidence (issue #20).

The hub announces every map head it signs, in order, to every agency and to independent witnesses (a prefecture
node, say), each announcement with a consistency proof of the hub's log from the previous head announced
(RFC 9162 §2.1.4, :func:`ledger.merkle.verify_consistency`). A :class:`Witness` keeps the heads it was shown and
finds:

* **a fork** (``hub_fork``): two signed heads with one sequence number and different bodies — the hub told two
  stories of one moment, e.g. a map with a flag to the holder and one without it to the provider; or a head
  whose log is not an extension of the last one's (same size and another root, or a consistency proof that
  fails). Heads shown by others (:meth:`Witness.cross_check`: gossip between witnesses, the head a routing
  decision cites) are compared by sequence too, which is how a split view — one story per audience — is found;
* **a break in the chain of heads** (heads carry an index and their predecessor's digest,
  :mod:`ledger.linkage.map_heads`): a head numbered one past the last that names another predecessor is a fork
  (``hub_fork``: the hub signed two heads with one index — provable from the two heads alone); a head numbered
  further on is **``head_skipped``**: the hub did not show this party every head, so it could have told other
  parties another story in between (a flag dropped under the head it skipped, and restored under the next). An
  honest hub announces every head to every party, in order; the witness's word is part of that evidence;
* **a rollback** (``hub_rollback``): a head announced with a lower sequence than one announced before (not the
  same head again: a message the broker operator replays is recognised and ignored), or a log smaller than the
  last one's.

An :class:`Evidence` holds the two signed heads (and the proof, if one failed), for an incident; anyone with the
hub's public key checks it again with :func:`check_evidence`. A same-sequence fork and a shrunken log need
nothing but the two heads; for a failed consistency proof and for a rollback the witness's word is part of it
(which proof the hub sent, which head came first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import Code, FlagLedgerError
from ledger.linkage.flag_map import FlagEntry, MapProof, verify
from ledger.linkage.map_heads import AUTO, MapHead, RoutingDecision
from ledger.merkle import verify_consistency

__all__ = ["Evidence", "Witness", "check_evidence"]


@dataclass(frozen=True)
class Evidence:
    """What the hub signed that shows it lied; ``code`` is one of ``hub_fork``, ``hub_rollback``,
    ``flag_ignored``, ``flag_dropped`` (each an incident's code, ledger.domain.incidents)."""

    code: str
    heads: tuple[MapHead, ...]
    note: str
    decision: RoutingDecision | None = None
    proofs: tuple[MapProof, ...] = ()
    consistency: tuple[bytes, ...] = ()
    flags: frozenset[str] = frozenset()  # flag_dropped: what the holder holds (its word; its change is in the log)


def _forked(a: MapHead, b: MapHead) -> bool:
    return (a.seq == b.seq or a.index == b.index) and a.digest() != b.digest()


def _broken(a: MapHead, b: MapHead) -> bool:
    """``b`` is numbered right after ``a`` but names another predecessor: two heads with ``a``'s index."""
    return b.index == a.index + 1 and b.prev != a.digest()


def _flagged(proof: MapProof) -> bool:
    # only the one byte of flags is read (FlagEntry.encode): any set bit means "not automatically"
    return proof.value is not None and len(proof.value) > 0 and proof.value[-1] != 0


def check_evidence(evidence: Evidence, hub_key: Ed25519PublicKey) -> bool:
    """True iff what ``evidence`` holds is signed by the hub and shows what its code says (see the module's
    note on what rests on the witness's word). Never raises."""
    try:
        for head in evidence.heads:
            head.verify(hub_key)
        heads = evidence.heads
        if evidence.code == Code.HUB_FORK and len(heads) == 2:
            a, b = heads
            if _forked(a, b) or _broken(a, b) or (a.log_size == b.log_size and a.log_root != b.log_root):
                return True
            return not verify_consistency(a.log_size, b.log_size, list(evidence.consistency), a.log_root, b.log_root)
        if evidence.code == Code.HUB_ROLLBACK and len(heads) == 2:
            a, b = heads
            return b.seq < a.seq or b.log_size < a.log_size or (b.seq > a.seq and b.index <= a.index)
        if evidence.code == Code.HEAD_SKIPPED and len(heads) == 2:
            return heads[1].index > heads[0].index + 1 and heads[1].seq > heads[0].seq  # shown one, then a later one
        if evidence.code == Code.FLAG_IGNORED and len(heads) == 1 and evidence.decision is not None:
            (head,), decision, (proof,) = heads, evidence.decision.verify(hub_key), evidence.proofs
            return (
                decision.cites(head)
                and decision.action == AUTO
                and proof.key == decision.person_key
                and verify(proof, head.map_root)
                and _flagged(proof)
            )
        if evidence.code == Code.FLAG_DROPPED and len(heads) == 1 and evidence.proofs and evidence.flags:
            shown = [FlagEntry(frozenset()) if p.value is None else FlagEntry.decode(p.value) for p in evidence.proofs]
            return all(verify(p, heads[0].map_root) for p in evidence.proofs) and any(
                not evidence.flags <= entry.flags for entry in shown
            )
    except (FlagLedgerError, ValueError, TypeError):
        return False
    return False


@dataclass
class Witness:
    """The heads one party was shown by one hub, and what they prove against it."""

    hub_key: Ed25519PublicKey
    by_seq: dict[int, MapHead] = field(default_factory=dict)
    by_index: dict[int, MapHead] = field(default_factory=dict)
    latest: MapHead | None = None
    evidence: list[Evidence] = field(default_factory=list)

    def _found(self, code: str, heads: tuple[MapHead, ...], note: str, proof: Sequence[bytes] = ()) -> Evidence:
        found = Evidence(code, heads, note, consistency=tuple(proof))
        self.evidence.append(found)
        return found

    def cross_check(self, head: MapHead, consistency: Sequence[bytes] | None = None) -> Evidence | None:
        """Compare a head someone else was shown (signature checked: an unsigned one is no evidence).

        By sequence: another body for a sequence seen here is a fork. A hub keeping two views on disjoint
        sequence numbers passes that; so, with ``consistency`` (the hub's proof between the newest head seen
        here and ``head``, asked for by the witness), the two logs must also be one: a proof that fails, or
        a log that shrinks under a higher sequence, is a fork."""
        head.verify(self.hub_key)
        known = self.by_seq.get(head.seq)
        if known is not None and _forked(known, head):
            return self._found(Code.HUB_FORK, (known, head), f"two heads for hub sequence {head.seq}")
        for other in self._around(head.index):
            if _forked(other, head):
                return self._found(Code.HUB_FORK, (other, head), f"two heads numbered {head.index}")
            if _broken(other, head) or _broken(head, other):
                a, b = (other, head) if other.index < head.index else (head, other)
                return self._found(Code.HUB_FORK, (a, b), f"head {b.index} does not follow head {a.index}")
        last = self.latest
        if consistency is None or last is None or known is not None:
            return None
        old, new = (last, head) if last.seq < head.seq else (head, last)
        if new.log_size < old.log_size or not verify_consistency(
            old.log_size, new.log_size, list(consistency), old.log_root, new.log_root
        ):
            return self._found(
                Code.HUB_FORK, (old, new), f"the logs at sequences {old.seq} and {new.seq} are not one", consistency
            )
        return None

    def _around(self, index: int) -> list[MapHead]:
        """The heads held numbered ``index - 1``, ``index`` and ``index + 1`` (by their index, not sequence)."""
        return [h for i in (index - 1, index, index + 1) if (h := self.by_index.get(i)) is not None]

    def restore(self, head: MapHead) -> None:
        """A head held before a restart (checked when first seen), taken as it is."""
        self._hold(head)

    def _hold(self, head: MapHead) -> None:
        self.by_seq[head.seq] = head
        self.by_index.setdefault(head.index, head)

    def observe(self, head: MapHead, consistency: Sequence[bytes] = ()) -> Evidence | None:
        """An announcement by the hub of its newest head, with the log's consistency proof from the last one
        announced. Returns the evidence found (also kept in ``evidence``), None if the head extends the last."""
        forked = self.cross_check(head)
        if forked is not None:
            return forked
        if head.seq in self.by_seq:
            return None  # the same head again: a replayed message, or one announced twice
        last = self.latest
        self._hold(head)
        if last is None:
            self.latest = head
            return None
        if head.seq < last.seq or head.log_size < last.log_size or head.index <= last.index:
            return self._found(
                Code.HUB_ROLLBACK,
                (last, head),
                f"hub sequence {head.seq} (log size {head.log_size}, head {head.index}) announced after"
                f" {last.seq} ({last.log_size}, head {last.index})",
            )
        if head.index > last.index + 1:
            self.latest = head  # go on from here: the gap is raised once, not at every head after it
            return self._found(
                Code.HEAD_SKIPPED,
                (last, head),
                f"shown head {head.index} (sequence {head.seq}) after head {last.index}: heads in between withheld",
            )
        if not verify_consistency(last.log_size, head.log_size, list(consistency), last.log_root, head.log_root):
            return self._found(
                Code.HUB_FORK,
                (last, head),
                f"the hub's log at sequence {head.seq} does not extend the one at {last.seq}",
                consistency,
            )
        self.latest = head
        return None
