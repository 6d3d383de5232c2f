"""A second key-store backend, in memory: what a hardware backend would be to the node
(ledger.runtime.keystore.KeyStore).

Its signing keys are handles that sign without handing their private half out (as a device's would); nothing it
holds ever reaches a file.
"""

from __future__ import annotations

import hashlib
import hmac as pyhmac
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import ConfigurationError
from ledger.log.datakeys import AesKek, KeyWrapper
from ledger.log.keyed_hash import KeyedHash
from ledger.log.signing import SigningKey
from ledger.runtime.keystore import KeyStore, signing_key_name


class DeviceKey:
    """A signing key the store keeps: it signs and tells its public key, and nothing else."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.__key = key
        self.signatures = 0

    def sign(self, data: bytes) -> bytes:
        self.signatures += 1
        return self.__key.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        return self.__key.public_key()


class MemoryKeyStore:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.keys: dict[str, DeviceKey] = {}

    def get(self, name: str) -> str:
        try:
            return self.secrets[name]
        except KeyError:
            raise ConfigurationError(f"no secret {name} in memory") from None

    def create(self, name: str, value: str) -> None:
        self.secrets.setdefault(name, value)

    def replace(self, name: str, value: str) -> None:
        self.secrets[name] = value

    def exists(self, name: str) -> bool:
        return name in self.secrets or name in self.keys

    def names(self) -> list[str]:
        return sorted({*self.secrets, *self.keys})

    def where(self, name: str) -> str:
        return f"memory:{name}"

    def signing_key(self, name: str) -> SigningKey:
        try:
            return self.keys[name]
        except KeyError:
            raise ConfigurationError(f"no signing key {name} in memory") from None

    def new_signing_key(self, agency: str) -> tuple[str, SigningKey]:
        key = DeviceKey(Ed25519PrivateKey.generate())
        name = signing_key_name(agency, key)
        self.keys[name] = key
        return name, key

    def adopt_signing_key(self, source: Path) -> str:
        # a device imports the PEM once; the node then names the key, never the file
        private = serialization.load_pem_private_key(source.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigurationError(f"{source} is not an Ed25519 private key")
        key = DeviceKey(private)
        name = "adopted-" + signing_key_name("key", key)
        self.keys[name] = key
        return name

    def _secret(self, name: str) -> bytes:
        try:
            return bytes.fromhex(self.get(name))
        except ValueError:
            raise ConfigurationError(f"the secret {name} in memory is not hex") from None

    def new_hmac_key(self, name: str) -> None:
        self.create(name, secrets.token_hex(32))

    def hmac(self, name: str, data: bytes) -> bytes:
        return pyhmac.new(self._secret(name), data, hashlib.sha256).digest()

    def keyed_hash(self, name: str) -> KeyedHash:
        self._secret(name)  # refused now, as a device would refuse a missing key
        return KeyedHash(lambda data: self.hmac(name, data), self.where(name))

    def key_wrapper(self, name: str) -> KeyWrapper:
        def made_once() -> bytes:
            self.new_hmac_key(name)
            return self._secret(name)

        return AesKek(made_once)


def as_key_store(store: MemoryKeyStore) -> KeyStore:
    """Type-checked proof that the in-memory backend is a complete :class:`KeyStore` (mypy fails otherwise)."""
    return store
