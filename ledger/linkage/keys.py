"""A party's own keys in the linkage: the hub's, the portal's and each agency's have the same three parts."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.log.keyed_hash import KeyedHash
from ledger.log.signing import Signer

__all__ = ["PartyKeys"]


@dataclass(frozen=True)
class PartyKeys:
    """A party's signing key, its sealing key, and the secret of its codes (an agency's, the portal's) or
    person ids (the hub's) — never shared. ``secret`` is a :class:`KeyedHash` when the key store computes the
    HMAC (an HSM: the secret never leaves it), the bytes otherwise."""

    signer: Signer
    sealing: X25519PrivateKey
    secret: bytes | KeyedHash = field(repr=False)

    @property
    def name(self) -> str:
        return self.signer.agency
