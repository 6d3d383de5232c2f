"""The ``file`` key store backend (ledger.runtime.keystore chooses it by default): one file per secret under
``DATA_DIR/secrets``, signing keys as PKCS#8 PEM. Beside ledger.runtime.pkcs11_keystore, the other backend; it
imports nothing of ledger.runtime.keystore, which names both and re-exports this one."""

from __future__ import annotations

import hashlib
import hmac as pyhmac
import secrets as pysecrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import ConfigurationError
from ledger.files import create_private, private_dir
from ledger.log.datakeys import AesKek, KeyWrapper
from ledger.log.keyed_hash import KeyedHash
from ledger.log.signing import SigningKey, key_id_for

__all__ = ["FileKeyStore", "signing_key_name"]


def _pem_key(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise ConfigurationError(f"cannot read signing key {where}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{where} is not an Ed25519 private key")
    return key


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signing_key_name(agency: str, key: SigningKey) -> str:
    public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{agency}-{key_id_for(agency, public_raw).split(':')[1]}.pem"


class FileKeyStore:
    """Today's files: one per secret in ``directory`` (0700, each file 0600, see ledger/files.py), the text
    secrets as one line, signing keys as PKCS#8 PEM. ``mounted``: names read from elsewhere (read-only)."""

    def __init__(self, directory: Path, mounted: Mapping[str, Path] | None = None) -> None:
        self.directory = directory
        self.mounted = dict(mounted or {})

    def _own(self, name: str) -> Path:
        """Where ``name`` is kept in the directory: the only place this store writes."""
        if Path(name).name != name or name in ("", ".", ".."):
            raise ConfigurationError(f"{name!r} is not a secret's name")
        return self.directory / name

    def _path(self, name: str) -> Path:
        """Where ``name`` is read: mounted, at the absolute path config.json records for a signing key the
        deployment mounts, or in the directory."""
        if name in self.mounted:
            return self.mounted[name]
        return Path(name) if Path(name).is_absolute() else self._own(name)

    def _read(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except OSError as exc:
            raise ConfigurationError(str(exc)) from exc

    def _write(self, name: str, data: bytes, *, replace: bool) -> None:
        # an imported secret is this directory's own copy, even where the environment mounts another
        path = self._own(name)
        private_dir(self.directory)
        if not replace and path.exists():
            return
        create_private(path, data, replace=replace)

    def get(self, name: str) -> str:
        try:
            return self._read(name).decode().strip()
        except UnicodeDecodeError as exc:
            raise ConfigurationError(str(exc)) from exc

    def create(self, name: str, value: str) -> None:
        if name not in self.mounted:
            self._write(name, (value + "\n").encode(), replace=False)

    def replace(self, name: str, value: str) -> None:
        self._write(name, (value + "\n").encode(), replace=True)

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def names(self) -> list[str]:
        own = (
            [p.name for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")]
            if self.directory.is_dir()
            else []
        )
        return sorted({*own, *(name for name, path in self.mounted.items() if path.exists())})

    def where(self, name: str) -> str:
        return str(self._path(name))

    def signing_key(self, name: str) -> SigningKey:
        try:
            data = self._read(name)
        except ConfigurationError as exc:
            raise ConfigurationError(f"cannot read signing key {self.where(name)}: {exc}") from exc
        return _pem_key(data, self.where(name))

    def new_signing_key(self, agency: str) -> tuple[str, SigningKey]:
        key = Ed25519PrivateKey.generate()
        name = signing_key_name(agency, key)
        self._write(name, _pem(key), replace=True)
        return name, key

    def adopt_signing_key(self, source: Path) -> str:
        name = str(source.absolute())
        self.signing_key(name)  # refused now if it is no Ed25519 key, not at the first signature
        return name

    def _secret(self, name: str) -> bytes:
        try:
            return bytes.fromhex(self.get(name))
        except ValueError as exc:
            raise ConfigurationError(f"the secret {self.where(name)} is not hex") from exc

    def new_hmac_key(self, name: str) -> None:
        self.create(name, pysecrets.token_hex(32))

    def keyed_hash(self, name: str) -> KeyedHash:
        secret = self._secret(name)  # read once, held by the returned hash (as the callers held the bytes)
        return KeyedHash(lambda data: pyhmac.new(secret, data, hashlib.sha256).digest(), self.where(name))

    def hmac(self, name: str, data: bytes) -> bytes:
        return pyhmac.new(self._secret(name), data, hashlib.sha256).digest()

    def key_wrapper(self, name: str) -> KeyWrapper:
        def made_once() -> bytes:
            self.create(name, pysecrets.token_hex(32))
            return self._secret(name)

        return AesKek(made_once)
