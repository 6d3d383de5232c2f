"""Who the linkage's parties are: each one's Ed25519 signing keys (the key registry, ``KeyRing``) and its X25519
sealing key. The hub looks a sender's key up here to check a signature, and a recipient's sealing key to seal
to it; an agency needs only the hub's entries.

An agency's entry also names its kind (municipality, support centre, police, …: ``AgencyKind``), as the hub's
administrator accepted it at ``linkage directory import``: the hub takes a move only from a municipality and a
protection request only from a protection body. A party with no kind in its entry is neither.

An agency's entry also names the protocol features its release understands (``FEATURES``; ``features`` in the
entry, as its node's ``linkage directory export`` prints it): the hub puts ``hub_seq`` in its messages only to an
agency whose entry names it, so a hub upgraded before its agencies does not stall them — an older agency's
strict decoding would park every message carrying the unknown field (docs/linkage.md, "Upgrade order").

Built from published keys; in a node these would come from the ``KeyRegistry`` events and a published sealing
key per party (not wired yet: docs/linkage.md, what is left).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ledger.domain.types import AgencyKind
from ledger.errors import Code, InputError, NotFoundError
from ledger.linkage.hub_seq import HUB_SEQ
from ledger.linkage.names import check_party
from ledger.linkage.sealing import SenderKeys, ring_keys
from ledger.log.signing import KeyRecord, KeyRing

__all__ = ["FEATURES", "Directory", "check_features"]

# what an agency's entry may say its release understands: ``hub_seq``, the hub's sequence number in its messages
# (ledger.linkage.hub_seq). An entry naming any other is refused: nothing is kept from it.
FEATURES = frozenset({HUB_SEQ})


def check_features(text: str, field: str = "features") -> frozenset[str]:
    """An entry's ``features`` (comma-separated names from ``FEATURES``, each once) as a set; "" is none.
    ``malformed`` for anything else — a hub that misread it would send an agency what it cannot decode."""
    if not text:
        return frozenset()
    names = text.split(",")
    if len(set(names)) != len(names) or not set(names) <= FEATURES:
        known = ", ".join(sorted(FEATURES))
        raise InputError(
            f"{field} must name features from {known}, comma-separated, each once; not {text!r}",
            code=Code.MALFORMED,
            field=field,
        )
    return frozenset(names)


@dataclass
class Directory:
    """Signing keys (with validity and revocation) and sealing keys, per party."""

    ring: KeyRing = field(default_factory=KeyRing)
    sealing: dict[str, X25519PublicKey] = field(default_factory=dict)
    kinds: dict[str, AgencyKind] = field(default_factory=dict)
    # the portal's current delivery key (its id, hex, and public half): providers seal wire keys to it
    # (ledger.linkage.wire_keys); none published: to the portal's sealing key
    delivery: dict[str, tuple[str, X25519PublicKey]] = field(default_factory=dict)
    # its serial (the portal's rotation counter; 0: unknown) — an announcement of an older key is refused
    # (ledger.linkage.delivery_keys)
    delivery_serial: dict[str, int] = field(default_factory=dict)
    # what each agency's entry says its release understands (``FEATURES``); none: an older release
    features: dict[str, frozenset[str]] = field(default_factory=dict)

    def add(
        self,
        signing: KeyRecord,
        sealing: X25519PublicKey,
        kind: AgencyKind | None = None,
        features: Iterable[str] = (),
    ) -> None:
        party = check_party(signing.agency)
        understood = check_features(",".join(sorted(set(features))))
        self.ring.add(signing)
        self.sealing[party] = sealing
        if kind is None:
            self.kinds.pop(party, None)
        else:
            self.kinds[party] = AgencyKind(kind)
        if understood:
            self.features[party] = understood
        else:
            self.features.pop(party, None)  # an entry imported again without them: an older release again

    def understands(self, party: str, feature: str) -> bool:
        """Whether ``party``'s imported entry says its release understands ``feature`` (one of ``FEATURES``)."""
        return feature in self.features.get(party, ())

    def kind_of(self, party: str) -> AgencyKind | None:
        """The agency's kind as its imported entry names it; None for the hub, the portal, a witness, or an
        agency whose entry was imported without one (then it is trusted with neither moves nor body requests)."""
        return self.kinds.get(party)

    def sender_keys(self, at: datetime) -> SenderKeys:
        return ring_keys(self.ring, at)

    def delivery_key(self, party: str) -> tuple[str, X25519PublicKey] | None:
        return self.delivery.get(party)

    def sealing_key(self, party: str) -> X25519PublicKey:
        try:
            return self.sealing[party]
        except KeyError:
            raise NotFoundError(f"no sealing key is published for {party}", code=Code.UNKNOWN_AGENCY) from None
