"""What a provider checks before answering automatically, and what a holder checks under every head (issue #20).

* :func:`verify_routing` — the provider, given the hub's routing decision, the map head it cites and the map
  proof for the person asked about, answers automatically only if all of this holds: the head and the decision
  are signed by the hub; the decision is for this provider, about the map key this provider was given for its
  code, and cites this head; the proof is for that key and verifies against the head's map root; the head is
  not older than the newest head this provider has seen (:class:`Freshness`); and the leaf shows no flag. A
  decision of "auto" about a person whose leaf shows a flag is the hub's signed lie: ``flag_ignored``, with the
  evidence. It returns the flags the leaf shows, so a "staff" decision is checked the same way.
* :func:`check_own_flags` — a holder, under every head it sees, checks that its own holding leaf shows every
  flag it holds and that the person's leaf (what providers are shown) does too: a dropped flag is
  ``flag_dropped``, with the head and the proofs as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import Code, HubMisbehaviour, InputError, IntegrityError
from ledger.linkage.flag_map import FlagEntry, MapProof, holding_key, verify
from ledger.linkage.map_heads import AUTO, MapHead, RoutingDecision
from ledger.linkage.witness import Evidence

__all__ = ["Freshness", "check_own_flags", "verify_routing"]


@dataclass
class Freshness:
    """The newest head a party has seen from the hub, and the digest of each sequence it has seen.

    The rule: a decision must cite a head at least as new as the newest seen. The hub sends a provider its
    messages in order on one inbox (order per sender: docs/linkage.md), and every head it announces, so an
    honest hub never cites an older head than one it already showed; an older one is a stale map served on
    purpose, or an old message replayed by the broker operator. Both are refused (``stale_map``), neither is
    proof against the hub, so it is answered by staff, not raised as an incident."""

    newest: MapHead | None = None
    seen: dict[int, MapHead] = field(default_factory=dict)

    def check(self, head: MapHead) -> None:
        known = self.seen.get(head.seq)
        if known is not None and known.digest() != head.digest():
            raise HubMisbehaviour(
                f"two map heads for hub sequence {head.seq}",
                code=Code.HUB_FORK,
                evidence=Evidence(Code.HUB_FORK, (known, head), f"two heads for hub sequence {head.seq}"),
            )
        if self.newest is not None and head.seq < self.newest.seq:
            raise IntegrityError(
                f"the decision cites map head {head.seq}, older than head {self.newest.seq} already seen",
                code=Code.STALE_MAP,
            )

    def see(self, head: MapHead, hub_key: Ed25519PublicKey) -> None:
        """Record a head the hub announced (signature checked), after :meth:`check`."""
        head.verify(hub_key)
        self.check(head)
        self.seen.setdefault(head.seq, head)
        if self.newest is None or head.seq > self.newest.seq:
            self.newest = head


def _entry(proof: MapProof) -> FlagEntry:
    return FlagEntry(frozenset()) if proof.value is None else FlagEntry.decode(proof.value)


def verify_routing(
    decision: RoutingDecision,
    head: MapHead,
    proof: MapProof,
    hub_key: Ed25519PublicKey,
    *,
    provider: str,
    person_key: bytes,
    freshness: Freshness,
) -> FlagEntry:
    """Check a routing decision before acting on it; returns the flags the person's leaf shows.

    ``person_key`` is the map key this provider derived for the person when it registered them, from the hub's
    VRF proof for their number (:func:`ledger.linkage.person_keys.verify_person_key`), never the key the
    decision names. Raises ``bad_signature``, ``misaddressed``, ``bad_proof``,
    ``stale_map``, ``hub_fork`` or ``flag_ignored``; a refused decision is answered by staff."""
    head.verify(hub_key)
    decision.verify(hub_key)
    if decision.provider != provider:
        raise IntegrityError(f"the routing decision is for {decision.provider}", code=Code.MISADDRESSED)
    if decision.person_key != person_key:
        raise IntegrityError("the routing decision names another person's map key", code=Code.BAD_PROOF)
    if not decision.cites(head):
        raise IntegrityError("the routing decision does not cite this map head", code=Code.BAD_PROOF)
    if proof.key != person_key or not verify(proof, head.map_root):
        raise IntegrityError("the map proof does not verify against the head's map root", code=Code.BAD_PROOF)
    try:
        flags = _entry(proof)
    except InputError:
        raise IntegrityError("the map proof's leaf is not a flag entry", code=Code.BAD_PROOF) from None
    # before freshness: "auto" past a flag of the head it cites is the hub's lie however old the head is
    if decision.action == AUTO and flags.flags:
        raise HubMisbehaviour(
            f"the hub routed an automatic answer about a person its map flags {sorted(flags.flags)}",
            code=Code.FLAG_IGNORED,
            evidence=Evidence(Code.FLAG_IGNORED, (head,), "auto past a flag", decision=decision, proofs=(proof,)),
        )
    freshness.see(head, hub_key)
    return flags


def check_own_flags(
    head: MapHead,
    person_proof: MapProof,
    holding_proof: MapProof,
    hub_key: Ed25519PublicKey,
    *,
    holder: str,
    code: str,
    person_key: bytes,
    expected: frozenset[str],
) -> None:
    """A holder's check of one head: its holding on the person (at the key of its own ``code`` for them) shows
    ``expected`` and so does the person's leaf (what providers are shown). Raises ``bad_signature``,
    ``bad_proof`` or ``flag_dropped``."""
    head.verify(hub_key)
    if person_proof.key != person_key or holding_proof.key != holding_key(person_key, holder, code):
        raise IntegrityError("a map proof for another key", code=Code.BAD_PROOF)
    if not (verify(person_proof, head.map_root) and verify(holding_proof, head.map_root)):
        raise IntegrityError("a map proof does not verify against the head's map root", code=Code.BAD_PROOF)
    try:
        person, holding = _entry(person_proof), _entry(holding_proof)
    except InputError:
        raise IntegrityError("a map proof's leaf is not a flag entry", code=Code.BAD_PROOF) from None
    missing = (expected - holding.flags) | (expected - person.flags)
    if missing:
        raise HubMisbehaviour(
            f"map head {head.seq} drops {sorted(missing)} held by {holder}",
            code=Code.FLAG_DROPPED,
            evidence=Evidence(
                Code.FLAG_DROPPED,
                (head,),
                f"{holder} holds {sorted(expected)}",
                proofs=(person_proof, holding_proof),
                flags=frozenset(expected),
            ),
        )
