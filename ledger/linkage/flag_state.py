"""The hub's side of the flag map: flag changes folded into leaves, heads signed, routing decided (issue #20).

Two kinds of leaf (:mod:`ledger.linkage.flag_map`):

* **the person's leaf**, at the person's map key (``key_of``: the VRF key of :mod:`ledger.linkage.person_keys`,
  :func:`map_key` of the hub person id by default): the union of every holder's flags on the person
  under any of their numbers (``chain``: the person ids of one person, ``ledger.linkage.codes.persons_of``).
  It is what a provider is shown, so it says which flags apply and nothing about who holds them;
* **a holding's leaf**, at :func:`holding_key` (person key, holder, the holder's code): one holder's flags on
  that person id. Only
  that holder is shown it; it lets the holder see its own flag was not dropped even while another holder's
  flag keeps the person's leaf flagged.

A person or holding with no flag left has no leaf (its proof is a non-membership proof), so a provider cannot
tell a person never flagged from one whose flags were all released.

The hub's message loop (not built here) calls :meth:`HubFlagMap.apply` for each flag change it files, signs a
head (:meth:`HubFlagMap.head`) after each batch, announces it, and routes with :meth:`HubFlagMap.route`.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.errors import Code, InputError
from ledger.linkage.flag_map import FlagEntry, MapProof, SparseMerkleMap, holding_key, map_key
from ledger.linkage.hiding import INFINITY, FlagChange
from ledger.linkage.map_heads import AUTO, STAFF, Action, MapHead, RoutingDecision, decide, sign_head
from ledger.log.signing import Signer

__all__ = ["HubFlagMap"]


class HubFlagMap:
    def __init__(
        self,
        chain: Callable[[str], list[str]] | None = None,
        key_of: Callable[[str], bytes] = map_key,
        code_of: Callable[[str, str], str] | None = None,
        cover: Callable[[str], dict[str, float]] | None = None,
    ) -> None:
        """``chain``: a person id → the person ids of all their numbers; ``key_of``: a person id → its map key
        (the VRF key made at registration, ledger.linkage.person_keys, which the hub keeps beside the id);
        ``code_of``: (person id, holder) → the holder's code for it, from the code map (without it a holding's
        key is computable by whoever knows the person key: for tests only); ``cover``: a person id → every
        person id ever joined to it → the hub sequence up to which it was (``ledger.hub.links.joined``: a link
        undone as wrong), in place of ``chain``: a holding there counts if it began before then."""
        self.map = SparseMerkleMap()
        self.holdings: dict[tuple[str, str], set[str]] = {}  # (person id, holder) → flags
        self._chain = chain or (lambda person: [person])
        self._key_of = key_of
        self._code_of = code_of or (lambda person, holder: "")
        self._cover = cover or (lambda person: dict.fromkeys(self._chain(person), INFINITY))
        self.since: dict[tuple[str, str, str], int] = {}  # (person id, holder, flag) → the sequence it was set at

    def flags_of(self, person: str) -> frozenset[str]:
        """What applies to the person under any of their numbers: the person's leaf."""
        until = self._cover(person)
        return frozenset(
            f
            for (p, h), flags in self.holdings.items()
            if p in until
            for f in flags
            if self.since.get((p, h, f), 0) < until[p]
        )

    def _write(self, key: bytes, flags: frozenset[str]) -> None:
        if flags:
            self.map.set(key, FlagEntry(flags).encode())
        else:
            self.map.delete(key)

    def apply(self, change: FlagChange) -> None:
        FlagEntry(frozenset([change.flag]))  # an unknown flag is refused before anything changes
        if change.action not in ("set", "release"):
            raise InputError(f"a flag change is a set or a release, not {change.action!r}", code=Code.MALFORMED)
        held = self.holdings.setdefault((change.person, change.holder), set())
        if change.action == "set":
            if change.flag not in held:
                self.since[(change.person, change.holder, change.flag)] = change.seq
            held.add(change.flag)
        else:
            held.discard(change.flag)
            self.since.pop((change.person, change.holder, change.flag), None)
        if not held:
            del self.holdings[(change.person, change.holder)]
        code = self._code_of(change.person, change.holder)
        self._write(holding_key(self._key_of(change.person), change.holder, code), frozenset(held))
        self.relink(change.person)

    def relink(self, person: str) -> None:
        """Rewrite the person's leaf under each of their numbers (after a flag change, or a number change)."""
        for p in self._cover(person):  # each its own leaf: a number once joined may cover less of the others
            self._write(self._key_of(p), self.flags_of(p))

    def root(self) -> bytes:
        return self.map.root()

    def head(
        self, signer: Signer, *, seq: int, log_size: int, log_root: bytes, time: str, after: MapHead | None = None
    ) -> MapHead:
        """The signed head of the map as it is, the next link after ``after`` (the hub's last head)."""
        return sign_head(
            signer, seq=seq, log_size=log_size, log_root=log_root, map_root=self.root(), time=time, after=after
        )

    def route(
        self, signer: Signer, *, request: str, provider: str, person: str, head: MapHead
    ) -> tuple[RoutingDecision, MapProof]:
        """The decision for ``provider`` about the person, and the proof of their leaf under ``head`` (which
        must be the head of the map as it is now)."""
        if head.map_root != self.root():
            raise InputError("a decision cites the head of the map as it is now", code=Code.STALE_MAP)
        key = self._key_of(person)
        action: Action = STAFF if self.flags_of(person) else AUTO
        decision = decide(signer, request=request, provider=provider, person_key=key, action=action, head=head)
        return decision, self.map.prove(key)

    def holder_proofs(self, person: str, holder: str, code: str | None = None) -> tuple[MapProof, MapProof]:
        """What the hub sends a holder with each head: the person's leaf and the holder's own holding leaf.
        ``code``: the holder's code for the person when the caller read it already (None: from ``code_of``)."""
        key = self._key_of(person)
        code = self._code_of(person, holder) if code is None else code
        return self.map.prove(key), self.map.prove(holding_key(key, holder, code))
