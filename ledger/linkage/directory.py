"""Who the linkage's parties are: each one's Ed25519 signing keys (the key registry, ``KeyRing``) and its X25519
sealing key. The hub looks a sender's key up here to check a signature, and a recipient's sealing key to seal
to it; an agency needs only the hub's entries.

Built from published keys; in a node these would come from the ``KeyRegistry`` events and a published sealing
key per party (not wired yet: docs/linkage.md, what is left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ledger.errors import Code, NotFoundError
from ledger.linkage.names import check_party
from ledger.linkage.sealing import SenderKeys, ring_keys
from ledger.log.signing import KeyRecord, KeyRing

__all__ = ["Directory"]


@dataclass
class Directory:
    """Signing keys (with validity and revocation) and sealing keys, per party."""

    ring: KeyRing = field(default_factory=KeyRing)
    sealing: dict[str, X25519PublicKey] = field(default_factory=dict)

    def add(self, signing: KeyRecord, sealing: X25519PublicKey) -> None:
        party = check_party(signing.agency)
        self.ring.add(signing)
        self.sealing[party] = sealing

    def sender_keys(self, at: datetime) -> SenderKeys:
        return ring_keys(self.ring, at)

    def sealing_key(self, party: str) -> X25519PublicKey:
        try:
            return self.sealing[party]
        except KeyError:
            raise NotFoundError(f"no sealing key is published for {party}", code=Code.UNKNOWN_AGENCY) from None
