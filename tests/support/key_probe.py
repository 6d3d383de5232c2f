"""Every secret of a node's key store that could serve as an HMAC key, for tests that try each one where another
party's code or id should need that party's own secret (tests/adversarial/test_who_stores_what.py,
tests/integration/test_agency_hub_mode.py)."""

from __future__ import annotations

from contextlib import suppress

from ledger.errors import ConfigurationError
from ledger.log.keyed_hash import KeyedHash
from ledger.runtime.keystore import KeyStore
from ledger.runtime.pkcs11_keystore import Pkcs11KeyStore


def hmac_candidates(store: KeyStore) -> list[bytes | KeyedHash]:
    """Readable hex secrets of at least 32 bytes, and — with the PKCS#11 store — each HMAC key inside the token
    as its :class:`KeyedHash` (computed there: those are never read out). Signing keys (PEM, token key pairs)
    are left out."""
    out: list[bytes | KeyedHash] = []
    for name in store.names():
        if name.endswith(".pem"):
            continue
        try:
            value = store.get(name)
        except ConfigurationError:
            if isinstance(store, Pkcs11KeyStore) and store.token_secret(name) is not None:
                with suppress(ConfigurationError):  # the data KEK is an AES key: no HMAC with it
                    out.append(store.keyed_hash(name))
            continue
        try:
            secret = bytes.fromhex(value)
        except ValueError:
            continue
        if len(secret) >= 32:
            out.append(secret)
    return out
