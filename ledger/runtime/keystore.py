"""Every secret of a node behind one interface: :class:`KeyStore` (the backend) and :class:`Keys` (what callers ask).

Secrets by name (the file backend's names are today's file names under ``DATA_DIR/secrets``):

* ``pseudonym.key`` — the deployment's pseudonym secret, shared by every agency (ledger.log.pseudonym), hex
* ``cipher.key`` — the event store's at-rest cipher key, base64
* ``AGENCY-id.key`` — each hosted agency's stream id key (ledger.log.stream_ids), hex
* ``api-token.key`` — the MAC secret of API tokens and console CSRF tokens (ledger.api.auth), hex
* ``incident-id.key`` — the keyed fingerprint of incident messages (ledger.app.incidents), hex
* ``AGENCY-<fingerprint>.pem`` — an agency's Ed25519 signing key; config.json names it per key

The backend is chosen in one place, :func:`open_keystore`, from config.json's ``keys`` section (``backend``,
overridden by ``FLAGLEDGER_KEYS_BACKEND``); ``file`` (:class:`FileKeyStore`, ledger.runtime.file_keystore) is the
default, ``pkcs11`` (ledger.runtime.pkcs11_keystore: keys in an HSM, text secrets sealed by it) the other. A backend
implements :class:`KeyStore` — its signing keys as handles that sign inside the device
(:class:`ledger.log.signing.SigningKey`), its HMAC secrets as :class:`ledger.log.keyed_hash.KeyedHash` (the
HMAC computed where the secret lives: with ``pkcs11`` inside the token), its data key-encryption key as a
:class:`ledger.log.datakeys.KeyWrapper` (wrapping inside the token) — and is added to :data:`BACKENDS`; no
caller changes. Secrets used only as HMAC keys (pseudonym, stream id keys, code secrets, the hub's person-id
secret) are asked for by :meth:`KeyStore.keyed_hash` / :meth:`KeyStore.hmac`, never read with ``get``.

Secrets the deployment mounts from its own store (``FLAGLEDGER_PSEUDONYM_KEY_FILE``, ``FLAGLEDGER_CIPHER_KEY_FILE``,
a signing key adopted at ``init``/``keys rotate``) are read where they are and never copied into the data
directory. A secret handed over as a file (the database password, the Kafka SASL password, a pseudonym secret to
import) is read by :func:`read_secret_file`.
"""

from __future__ import annotations

import base64
import secrets as pysecrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field

from ledger.errors import ConfigurationError
from ledger.log.datakeys import KeyWrapper
from ledger.log.keyed_hash import KeyedHash
from ledger.log.signing import Signer, SigningKey
from ledger.runtime.file_keystore import FileKeyStore, signing_key_name
from ledger.settings import Section, section_config

__all__ = [
    "BACKENDS",
    "FileKeyStore",
    "KeySettings",
    "KeyStore",
    "Keys",
    "open_keystore",
    "read_secret_file",
    "signing_key_name",
]

PSEUDONYM = "pseudonym.key"
CIPHER = "cipher.key"
API_TOKEN = "api-token.key"
INCIDENT_ID = "incident-id.key"
DATA_KEK = "data-kek.key"


class KeyStore(Protocol):
    """Where a node's secrets live. Text secrets (hex or base64) by name; signing keys as signing handles."""

    def get(self, name: str) -> str:
        """The secret ``name``; ConfigurationError (saying why, not what) if it cannot be read."""
        ...

    def create(self, name: str, value: str) -> None:
        """Keep ``value`` as ``name`` unless a secret of that name exists (the first of two racing callers
        wins; read it back with :meth:`get`). A secret mounted from the deployment's store is never written."""
        ...

    def replace(self, name: str, value: str) -> None:
        """Keep ``value`` as ``name``, replacing what was there."""
        ...

    def exists(self, name: str) -> bool: ...

    def names(self) -> list[str]:
        """Every secret held, sorted."""
        ...

    def where(self, name: str) -> str:
        """Where ``name`` lives, for messages to the operator (a path, a slot); never the secret."""
        ...

    def signing_key(self, name: str) -> SigningKey: ...

    def new_signing_key(self, agency: str) -> tuple[str, SigningKey]:
        """A new Ed25519 key of ``agency``, kept; its name (for config.json) and the key."""
        ...

    def adopt_signing_key(self, source: Path) -> str:
        """The name under which the Ed25519 PEM at ``source`` (made in the deployment's secret store) is used."""
        ...

    # -- secrets used where they live (issue #22: inside the device with ``pkcs11``) ---------------------
    def new_hmac_key(self, name: str) -> None:
        """A 256-bit HMAC secret ``name`` unless one is held (``pkcs11``: made inside the token)."""
        ...

    def keyed_hash(self, name: str) -> KeyedHash:
        """HMAC-SHA256 under the secret ``name`` (hex), computed where it lives; ConfigurationError now if it
        cannot be used. The same secret gives the same HMAC with every backend."""
        ...

    def hmac(self, name: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the secret ``name``, computed where it lives."""
        ...

    def key_wrapper(self, name: str) -> KeyWrapper:
        """The key-encryption key ``name`` (made on its first use) as a wrapper of data keys."""
        ...


def read_secret_file(path: Path, what: str) -> str:
    """A secret handed over as a file (a mounted secret, an import), stripped of surrounding whitespace."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the {what} file {path}: {exc}") from exc


class KeySettings(Section):
    """config.json's ``keys`` section."""

    model_config = section_config(env_ignore_empty=True)
    section: ClassVar[str] = "keys"

    backend: Literal["file", "pkcs11"] = Field("file", validation_alias="FLAGLEDGER_KEYS_BACKEND")
    # secrets mounted from the deployment's store, read where they are
    pseudonym_key_file: str = Field("", validation_alias="FLAGLEDGER_PSEUDONYM_KEY_FILE")
    cipher_key_file: str = Field("", validation_alias="FLAGLEDGER_CIPHER_KEY_FILE")
    # backend "pkcs11" (ledger.runtime.pkcs11_keystore): the module, the token, and where its PIN is read
    pkcs11_module: str = Field("", validation_alias="FLAGLEDGER_PKCS11_MODULE")
    pkcs11_token: str = Field("", validation_alias="FLAGLEDGER_PKCS11_TOKEN")
    pkcs11_pin_file: str = Field("", validation_alias="FLAGLEDGER_PKCS11_PIN_FILE")


class _Config(Protocol):
    """What choosing a backend reads of a node's configuration (``ledger.runtime.config.NodeConfig``, which
    reads secret files through this module, so it is named by shape)."""

    @property
    def secrets_dir(self) -> Path: ...

    @property
    def keys(self) -> Mapping[str, Any]: ...


def _mounted(settings: KeySettings) -> dict[str, Path]:
    mounted = {PSEUDONYM: settings.pseudonym_key_file, CIPHER: settings.cipher_key_file}
    return {name: Path(path) for name, path in mounted.items() if path}


def _file_store(config: _Config, settings: KeySettings) -> KeyStore:
    return FileKeyStore(config.secrets_dir, _mounted(settings))


def _pkcs11_store(config: _Config, settings: KeySettings) -> KeyStore:
    from ledger.runtime.pkcs11_keystore import Pkcs11KeyStore, open_token_session, read_pin

    if not settings.pkcs11_module or not settings.pkcs11_token:
        raise ConfigurationError(
            "keys.backend is pkcs11 but keys.pkcs11_module (FLAGLEDGER_PKCS11_MODULE) or keys.pkcs11_token "
            "(FLAGLEDGER_PKCS11_TOKEN) is not set"
        )
    token = open_token_session(settings.pkcs11_module, settings.pkcs11_token, read_pin(settings.pkcs11_pin_file))
    return Pkcs11KeyStore(token, config.secrets_dir, _mounted(settings))


# the one place a backend is chosen: config.json ``"keys": {"backend": ...}``
BACKENDS: dict[str, Callable[[_Config, KeySettings], KeyStore]] = {"file": _file_store, "pkcs11": _pkcs11_store}


def open_keystore(config: _Config) -> KeyStore:
    settings = KeySettings.load(config.keys)
    return BACKENDS[settings.backend](config, settings)


class Keys:
    """A node's secrets as its parts use them, from whichever :class:`KeyStore` backs the node."""

    def __init__(self, store: KeyStore, *, national: bool = True) -> None:
        self.store = store
        # False for an agency in linkage hub mode: the national pseudonym secret is no secret it may hold or read
        # (docs/linkage.md, key hygiene), so :meth:`pseudonym_hash` refuses there
        self.national = national

    def _hex(self, name: str, what: str, hint: str = "") -> bytes:
        try:
            return bytes.fromhex(self.store.get(name))
        except (ConfigurationError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the {what} {self.store.where(name)}: {exc}{hint}") from exc

    def _made_once(self, name: str, what: str) -> bytes:
        """A node-local secret, made with 256 random bits the first time it is needed."""
        self.store.create(name, pysecrets.token_hex(32))
        return self._hex(name, what)

    # -- made at init ---------------------------------------------------------------------------------
    def create_missing(self, pseudonym_from: Path | None = None) -> None:
        """The secrets ``init`` makes: the pseudonym secret (imported from ``pseudonym_from`` if given: every
        agency of a deployment shares one; never for an agency in hub mode, ``national=False``) and the cipher
        key; a mounted one is left where it is."""
        if not self.national:
            if pseudonym_from is not None:
                raise ConfigurationError(
                    "an agency in linkage hub mode holds no national pseudonym secret: do not give one"
                )
        elif pseudonym_from is not None:
            secret = read_secret_file(pseudonym_from, "pseudonym secret")
            try:
                bytes.fromhex(secret)
            except ValueError as exc:
                raise ConfigurationError(f"cannot read pseudonym secret {pseudonym_from}: {exc}") from exc
            self.store.replace(PSEUDONYM, secret)
        elif self.national:
            # with pkcs11 made inside the token: an agency joining another's deployment imports the shared one
            self.store.new_hmac_key(PSEUDONYM)
        self.store.create(CIPHER, base64.b64encode(pysecrets.token_bytes(32)).decode())

    def pseudonym_hash(self) -> KeyedHash:
        """HMAC under the pseudonym secret, computed where it lives (ledger.log.pseudonym)."""
        if not self.national:
            raise ConfigurationError(
                "this node is in linkage hub mode: the national pseudonym secret is not read here (an insider at "
                "one agency must not hold it); remove pseudonym.key from its key store if an older init made it"
            )
        try:
            return self.store.keyed_hash(PSEUDONYM)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"cannot use the pseudonym secret {self.store.where(PSEUDONYM)}: {exc}. Every agency of a deployment "
                "must share it: copy it from the deployment's secret store or set FLAGLEDGER_PSEUDONYM_KEY_FILE"
            ) from exc

    def secret_hash(self, name: str, what: str) -> KeyedHash:
        """HMAC under the secret ``name`` (a code secret, ...), made the first time it is needed."""
        try:
            self.store.new_hmac_key(name)
            return self.store.keyed_hash(name)
        except ConfigurationError as exc:
            raise ConfigurationError(f"cannot use the {what} {self.store.where(name)}: {exc}") from exc

    def cipher_key(self) -> str:
        try:
            key = self.store.get(CIPHER)
            base64.b64decode(key, validate=True)
            return key
        except (ConfigurationError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the at-rest cipher key {self.store.where(CIPHER)}: {exc}") from exc

    # -- per agency -----------------------------------------------------------------------------------
    @staticmethod
    def id_key_name(code: str) -> str:
        return f"{code}-id.key"

    def create_id_key(self, code: str) -> None:
        """The agency's own stream id key (ledger.log.stream_ids), made once when it is first hosted here.

        Back it up with the data directory: without it the agency no longer finds its own protections by
        person (the events stay verifiable, but a new flag would open a second stream)."""
        self.store.new_hmac_key(self.id_key_name(code))

    def id_keys(self, codes: Iterable[str]) -> dict[str, KeyedHash]:
        """Each hosted agency's stream id key, as the HMAC under it (computed where it lives)."""
        keys: dict[str, KeyedHash] = {}
        for code in codes:
            name = self.id_key_name(code)
            try:
                keys[code] = self.store.keyed_hash(name)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"cannot read the stream id key of agency {code} ({self.store.where(name)}): {exc}. Restore it "
                    "from the data directory's backup: without it the agency's own streams about people cannot "
                    "be found"
                ) from exc
        return keys

    def signer(self, agency: str, name: str) -> Signer:
        return Signer(agency, self.store.signing_key(name))

    def new_signer(self, agency: str, adopt: Path | None = None) -> tuple[str, Signer]:
        """A new signing key of ``agency`` (or the one at ``adopt``, made in the deployment's secret store):
        its name for config.json, and its signer."""
        if adopt is not None:
            name = self.store.adopt_signing_key(adopt)
            return name, self.signer(agency, name)
        name, key = self.store.new_signing_key(agency)
        return name, Signer(agency, key)

    # -- node-local, made on first use ----------------------------------------------------------------
    def api_token_secret(self) -> bytes:
        return self._made_once(API_TOKEN, "API token secret")

    def incident_secret(self) -> bytes:
        return self._made_once(INCIDENT_ID, "incident id secret")

    def data_wrapper(self) -> KeyWrapper:
        """The key-encryption key of the per-subject data keys (ledger.log.datakeys; docs/erasure.md), made on
        first use; with ``pkcs11`` it is in the token and wraps and unwraps there."""
        return self.store.key_wrapper(DATA_KEK)
