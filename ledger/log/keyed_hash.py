"""HMAC-SHA256 under one secret, computed wherever the secret lives (issue #22: keys in an HSM).

The pseudonym secret, each agency's stream id key and code secret, the portal's code secret and the hub's
person-id secret are all used the same way: an HMAC of a number or a name. With the ``file`` key store the
secret is read and the HMAC computed here; with the ``pkcs11`` key store the secret is a non-extractable key in
the token and the HMAC is computed inside it (``CKM_SHA256_HMAC``). The code that derives ids takes a
:class:`KeyedHash` and never sees which.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from ledger.errors import Code, InputError

__all__ = ["KeyedHash"]


class KeyedHash:
    """``data → HMAC-SHA256(secret, data)``, the secret in memory (:meth:`of_secret`) or behind a key store
    (built with the store's ``hmac``)."""

    __slots__ = ("_compute", "where")

    def __init__(self, compute: Callable[[bytes], bytes], where: str = "") -> None:
        self._compute = compute
        self.where = where  # for messages: never the secret

    def __call__(self, data: bytes) -> bytes:
        return self._compute(data)

    def __repr__(self) -> str:
        return f"KeyedHash({self.where or 'in memory'})"

    @classmethod
    def of_secret(cls, secret: bytes, minimum: int = 32, what: str = "secret") -> KeyedHash:
        if len(secret) < minimum:
            raise InputError(f"the {what} must be at least {minimum} bytes", code=Code.CONFIGURATION)
        return cls(lambda data: hmac.new(secret, data, hashlib.sha256).digest())

    @classmethod
    def of(cls, secret: bytes | KeyedHash, minimum: int = 32, what: str = "secret") -> KeyedHash:
        """``secret`` itself if it is one; else the HMAC under the bytes given."""
        return secret if isinstance(secret, KeyedHash) else cls.of_secret(secret, minimum, what)
