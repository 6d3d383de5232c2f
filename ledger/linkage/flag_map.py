"""The hub's flag map: a sparse Merkle map from a person's map key to what protects them (issue #20).

A binary tree of depth 256 over every possible 256-bit key, almost all of it empty. Three hash domains, so a
leaf can never pass for a node nor an empty subtree for either:

* ``leaf(key, value) = SHA-256(0x00 ‖ key ‖ value)`` — the key is inside the leaf, so a leaf cannot be moved;
* ``node(left, right) = SHA-256(0x01 ‖ left ‖ right)``;
* ``empty[0] = SHA-256(0x02 ‖ "flagledger/flag-map/empty/1")``, ``empty[h + 1] = node(empty[h], empty[h])``
  (the 257 empty-subtree hashes are computed once, at import).

A proof for a key is the 256 siblings on its path, leaf level first, compressed: a 32-byte bitmap says which are
present, an absent one is ``empty[h]``. With ``n`` people at random keys a proof carries about ``log2 n``
hashes. One verifier (:func:`verify`) serves both kinds: a membership proof carries the value, a non-membership
proof carries ``None`` and starts from ``empty[0]``.

The map caches the hash of every non-empty subtree it has computed, keyed by (height, prefix); changing a key
drops the 257 entries on its path, so an update costs one leaf's 256 hashes and a root or a proof afterwards
reads the rest from the cache (about 2n entries for n keys).

What a leaf holds and how keys are made: :func:`map_key`, :func:`holding_key`, :class:`FlagEntry`.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ledger.errors import Code, InputError

__all__ = [
    "DEPTH",
    "EMPTY",
    "FLAG_BITS",
    "FlagEntry",
    "MapProof",
    "SparseMerkleMap",
    "holding_key",
    "leaf_hash",
    "map_key",
    "node_hash",
    "root_from_proof",
    "verify",
]

DEPTH: Final = 256
_HASH = 32


def leaf_hash(key: bytes, value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + key + value).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _empties() -> tuple[bytes, ...]:
    out = [hashlib.sha256(b"\x02flagledger/flag-map/empty/1").digest()]
    for _ in range(DEPTH):
        out.append(node_hash(out[-1], out[-1]))
    return tuple(out)


EMPTY: Final = _empties()
"""``EMPTY[h]``: the hash of an empty subtree of height ``h``; ``EMPTY[256]`` is the empty map's root."""


# -- keys and values -------------------------------------------------------------------------------------

FLAG_BITS: Final = {"NON_DISCLOSURE": 1, "NO_AUTO_RESPONSE": 2}
_VALUE_TAG = b"FLM1"


def map_key(person: str) -> bytes:
    """The map key of a hub person id. A hash, so a key names no row of the hub's code map; the hub hands it to
    each agency that registers the person (docs/accountable-hub.md: binding a key to a code)."""
    if not isinstance(person, str) or not person:
        raise InputError("a map key is made from a hub person id", code=Code.MALFORMED, field="person")
    return hashlib.sha256(b"flagledger/flag-map/person/1\x00" + person.encode()).digest()


def holding_key(person_key: bytes, holder: str, code: str) -> bytes:
    """The map key of one holder's holding on a person: its flags alone, which only that holder is shown.

    ``code`` is the holder's own code for the person, which only the holder and the hub know: a provider that
    knows the person key could otherwise compute a holding's key and value for a guessed holder, and test it
    against the sibling hashes of the proofs it is shown."""
    _check_key(person_key)
    tail = f"{holder}\x00{code}".encode()
    return hashlib.sha256(b"flagledger/flag-map/holding/1\x00" + person_key + tail).digest()


@dataclass(frozen=True)
class FlagEntry:
    """What a leaf holds: a set of flags, as one byte. A person's leaf holds the union over every holder (what
    a provider must obey); a holding's leaf holds one holder's. No holder's name and no time are in a leaf, so
    a provider shown a person's leaf learns "protected, by which flags", never by whom."""

    flags: frozenset[str]

    def __post_init__(self) -> None:
        unknown = set(self.flags) - set(FLAG_BITS)
        if unknown:
            raise InputError(f"unknown flags {sorted(unknown)}", code=Code.MALFORMED, field="flags")

    def encode(self) -> bytes:
        return _VALUE_TAG + bytes([sum(FLAG_BITS[f] for f in self.flags)])

    @classmethod
    def decode(cls, value: bytes) -> FlagEntry:
        if len(value) != len(_VALUE_TAG) + 1 or not value.startswith(_VALUE_TAG):
            raise InputError("not a flag map value", code=Code.MALFORMED, field="value")
        bits = value[-1]
        if bits & ~sum(FLAG_BITS.values()):
            raise InputError("a flag map value with unknown flag bits", code=Code.MALFORMED, field="value")
        return cls(frozenset(f for f, b in FLAG_BITS.items() if bits & b))


# -- proofs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapProof:
    """The path of ``key``: ``value`` (None: the key is absent), ``present`` (bit ``h`` set: the sibling at
    height ``h`` is in ``siblings``, else it is ``EMPTY[h]``), the present siblings leaf level first."""

    key: bytes
    value: bytes | None
    present: bytes
    siblings: tuple[bytes, ...]

    def encode(self) -> bytes:
        value = b"" if self.value is None else self.value
        flag = b"\x00" if self.value is None else b"\x01"
        return self.key + flag + len(value).to_bytes(2, "big") + value + self.present + b"".join(self.siblings)


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != _HASH:
        raise InputError("a map key is 32 bytes", code=Code.MALFORMED, field="key")
    return key


def root_from_proof(proof: MapProof) -> bytes | None:
    """The root ``proof`` implies, or None if it is malformed (never raises: the input is a hub's)."""
    try:
        key, present, siblings = proof.key, proof.present, proof.siblings
        if not isinstance(key, bytes) or len(key) != _HASH or not isinstance(present, bytes) or len(present) != 32:
            return None
        if proof.value is not None and not isinstance(proof.value, bytes):
            return None
        bits = int.from_bytes(present, "big")
        if bits.bit_count() != len(siblings) or not all(isinstance(s, bytes) and len(s) == _HASH for s in siblings):
            return None
    except (AttributeError, TypeError):
        return None
    k = int.from_bytes(key, "big")
    sha256 = hashlib.sha256  # node_hash inlined: this loop is the provider's cost per decision
    # an absent key starts as an empty leaf; while its siblings are empty too, its subtree stays EMPTY[h]
    empty = proof.value is None
    cur = EMPTY[0] if empty else leaf_hash(key, proof.value or b"")
    at = 0
    for h in range(DEPTH):
        if bits >> h & 1:
            sib = siblings[at]
            at += 1
        elif empty:
            cur = EMPTY[h + 1]
            continue
        else:
            sib = EMPTY[h]
        empty = False
        cur = sha256(b"\x01" + sib + cur if k >> h & 1 else b"\x01" + cur + sib).digest()
    return cur


def verify(proof: MapProof, root: bytes) -> bool:
    """True iff ``proof`` shows ``proof.key`` holds ``proof.value`` (absent if None) in the map with ``root``."""
    computed = root_from_proof(proof)
    return computed is not None and computed == root


# -- the map -----------------------------------------------------------------------------------------------


class SparseMerkleMap:
    """Keys (32 bytes) → values (bytes); ``root``, ``get``, ``set``, ``delete``, ``prove``."""

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._values: dict[int, bytes] = {}
        self._keys: list[int] = []  # sorted: a subtree's keys are one slice of it
        self._cache: dict[tuple[int, int], bytes] = {}
        for key, value in items:
            self.set(key, value)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(int.from_bytes(_check_key(key), "big"))

    def set(self, key: bytes, value: bytes) -> None:
        if not isinstance(value, bytes) or len(value) > 0xFFFF:
            raise InputError("a map value is at most 65535 bytes", code=Code.OVERSIZE, field="value")
        k = int.from_bytes(_check_key(key), "big")
        if k not in self._values:
            bisect.insort(self._keys, k)
        self._values[k] = value
        self._forget(k)

    def delete(self, key: bytes) -> None:
        k = int.from_bytes(_check_key(key), "big")
        if self._values.pop(k, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, k)]
            self._forget(k)

    def _forget(self, k: int) -> None:
        for h in range(DEPTH + 1):
            self._cache.pop((h, k >> h), None)

    def _span(self, height: int, prefix: int, lo: int, hi: int) -> tuple[int, int]:
        first = prefix << height
        a = bisect.bisect_left(self._keys, first, lo, hi)
        return a, bisect.bisect_left(self._keys, first + (1 << height), a, hi)

    def _node(self, height: int, prefix: int, lo: int, hi: int) -> bytes:
        """The hash of the subtree (height, prefix), whose keys are ``self._keys[lo:hi]``."""
        if lo == hi:
            return EMPTY[height]
        cached = self._cache.get((height, prefix))
        if cached is not None:
            return cached
        if hi - lo == 1:
            k = self._keys[lo]
            cur = leaf_hash(k.to_bytes(_HASH, "big"), self._values[k])
            sha256 = hashlib.sha256
            for h in range(height):
                cur = sha256(b"\x01" + EMPTY[h] + cur if k >> h & 1 else b"\x01" + cur + EMPTY[h]).digest()
        else:
            mid = bisect.bisect_left(self._keys, (2 * prefix + 1) << (height - 1), lo, hi)
            cur = node_hash(
                self._node(height - 1, 2 * prefix, lo, mid), self._node(height - 1, 2 * prefix + 1, mid, hi)
            )
        self._cache[(height, prefix)] = cur
        return cur

    def root(self) -> bytes:
        return self._node(DEPTH, 0, 0, len(self._keys))

    def prove(self, key: bytes) -> MapProof:
        """The membership proof of ``key`` if it is in the map, else its non-membership proof."""
        k = int.from_bytes(_check_key(key), "big")
        bits = 0
        found: list[bytes] = []
        lo, hi = 0, len(self._keys)
        for h in range(DEPTH - 1, -1, -1):  # from the root's children down
            if hi - lo <= 1:
                # at most one key below: every sibling further down is empty, but where that key (if it is
                # not this one) parts from this key's path: there its whole subtree is the sibling
                if hi - lo == 1 and (j := self._keys[lo]) != k:
                    d = (j ^ k).bit_length() - 1
                    bits |= 1 << d
                    found.append(self._node(d, j >> d, lo, hi))
                break
            side, other = k >> h, (k >> h) ^ 1
            a, b = self._span(h, side, lo, hi)
            oa, ob = self._span(h, other, lo, hi)
            if oa != ob:
                bits |= 1 << h
                found.append(self._node(h, other, oa, ob))
            lo, hi = a, b
        return MapProof(key, self._values.get(k), bits.to_bytes(32, "big"), tuple(reversed(found)))
