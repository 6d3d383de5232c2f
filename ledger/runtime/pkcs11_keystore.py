"""The PKCS#11 key store (issue #22): a node's keys in a hardware security module (or SoftHSM2 for tests).

* **Signing keys** (Ed25519) are made inside the token (``CKM_EC_EDWARDS_KEY_PAIR_GEN``), sensitive and not
  extractable, and sign inside it (``CKM_EDDSA``): :class:`TokenSigningKey` is the handle
  (:class:`ledger.log.signing.SigningKey`). Their name (in config.json) is the object's label,
  ``AGENCY-<fingerprint>``.
* **HMAC keys and the data key-encryption key** (the pseudonym secret, stream id keys, code secrets, the hub's
  person-id secret; ``data-kek.key``) are token objects used inside it: ledger.runtime.pkcs11_secrets.
* **Other text secrets** (the cipher key, the API token secret, the sealing keys — any name) are kept in the
  data directory's secrets directory as ``NAME.sealed``: AES-256-GCM ciphertext made *inside the token* under
  one key-encryption key (label ``flagledger-kek``) that never leaves it, with the secret's name as associated
  data (a sealed file renamed to another secret's name does not open). A copy of the data directory holds
  ciphertext alone.

Threat: an insider or shell user who copies the data directory (or a backup) gets no key material; using the
keys needs the token and its PIN, which the node reads from ``FLAGLEDGER_PKCS11_PIN`` or the file named by
``FLAGLEDGER_PKCS11_PIN_FILE`` (keys.pkcs11_pin_file), never from config.json. The session with the token is
ledger.runtime.pkcs11_token's.
"""

from __future__ import annotations

import base64
import secrets as pysecrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import ConfigurationError
from ledger.files import create_private, private_dir
from ledger.log.signing import SigningKey, key_id_for
from ledger.runtime.pkcs11_secrets import TokenSecretKeys
from ledger.runtime.pkcs11_token import TokenSession, open_token_session, read_pin
from ledger.runtime.pkcs11_token import pkcs11_module as _pkcs11

__all__ = ["KEK_LABEL", "SEALED_SUFFIX", "Pkcs11KeyStore", "TokenSigningKey", "open_token_session", "read_pin"]

KEK_LABEL = "flagledger-kek"
SEALED_SUFFIX = ".sealed"
_FORMAT = "flagledger-p11-gcm-v1:"
_NONCE = 12
_ED25519_OID = "1.3.101.112"


def _public_raw(point: bytes) -> bytes:
    """The 32 raw bytes of an Ed25519 CKA_EC_POINT (a DER OCTET STRING, or raw as some tokens give it)."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise ConfigurationError("the token's Ed25519 public key has an unexpected encoding")


class TokenSigningKey:
    """An Ed25519 key inside the token: it signs there, and tells its public key; its private half is never
    read (the token would refuse: it is sensitive and not extractable)."""

    def __init__(self, token: TokenSession, private: Any, public: Ed25519PublicKey) -> None:
        self._token = token
        self._private = private
        self._public = public

    def sign(self, data: bytes) -> bytes:
        mechanism = _pkcs11().Mechanism.EDDSA
        signature: bytes = self._token.run("sign", lambda _s: self._private.sign(data, mechanism=mechanism))
        return signature

    def public_key(self) -> Ed25519PublicKey:
        return self._public


class Pkcs11KeyStore(TokenSecretKeys):
    """:class:`ledger.runtime.keystore.KeyStore` over a PKCS#11 token; ``directory`` holds the sealed text
    secrets, ``mounted`` names read (plain) from the deployment's own store, as with the file backend."""

    def __init__(self, token: TokenSession, directory: Path, mounted: Mapping[str, Path] | None = None) -> None:
        super().__init__()
        self.token = token
        self.directory = directory
        self.mounted = dict(mounted or {})
        # opened secrets by (name, the sealed file's identity): the API token secret is asked for on every
        # request, and a hardware token's decryption is slow; a replaced file is a new identity
        self._opened: dict[tuple[str, int, int, int], str] = {}

    # -- the key-encryption key ------------------------------------------------------------------------
    def _kek(self, session: Any, *, make: bool) -> Any:
        if self.token.kek is None:
            self.token.kek = self._find_kek(session, make=make)
        return self.token.kek

    def _find_kek(self, session: Any, *, make: bool) -> Any:
        pkcs11 = _pkcs11()
        try:
            return session.get_key(pkcs11.ObjectClass.SECRET_KEY, pkcs11.KeyType.AES, label=KEK_LABEL)
        except pkcs11.exceptions.NoSuchKey:
            if not make:
                raise ConfigurationError(
                    f"the PKCS#11 token {self.token.label!r} holds no key-encryption key ({KEK_LABEL}): the sealed "
                    "secrets were made with another token"
                ) from None
        except pkcs11.exceptions.MultipleObjectsReturned:
            raise ConfigurationError(
                f"the PKCS#11 token {self.token.label!r} holds more than one {KEK_LABEL}: remove the one no sealed "
                "secret was made with"
            ) from None
        attr = pkcs11.Attribute
        return session.generate_key(
            pkcs11.KeyType.AES,
            256,
            label=KEK_LABEL,
            store=True,
            template={attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.PRIVATE: True},
        )

    @staticmethod
    def _aad(name: str) -> bytes:
        return b"flagledger secret " + name.encode()

    def _seal(self, name: str, value: str) -> bytes:
        pkcs11 = _pkcs11()
        nonce = pysecrets.token_bytes(_NONCE)
        params = pkcs11.mechanisms.GCMParams(nonce, self._aad(name), 128)

        def seal(session: Any) -> bytes:
            kek = self._kek(session, make=True)
            sealed: bytes = kek.encrypt(value.encode(), mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params)
            return sealed

        sealed = self.token.run("seal a secret", seal)
        return (_FORMAT + base64.b64encode(nonce + sealed).decode() + "\n").encode()

    def _open(self, name: str, data: bytes) -> str:
        pkcs11 = _pkcs11()
        text = data.decode(errors="replace").strip()
        if not text.startswith(_FORMAT):
            raise ConfigurationError(f"{self.where(name)} is not a sealed secret")
        try:
            raw = base64.b64decode(text[len(_FORMAT) :], validate=True)
        except ValueError as exc:
            raise ConfigurationError(f"{self.where(name)} is not a sealed secret") from exc
        params = pkcs11.mechanisms.GCMParams(raw[:_NONCE], self._aad(name), 128)

        def unseal(session: Any) -> bytes:
            kek = self._kek(session, make=False)
            plain: bytes = kek.decrypt(raw[_NONCE:], mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params)
            return plain

        try:
            return self.token.run("open a sealed secret", unseal).decode()
        except (ConfigurationError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{self.where(name)} does not open under the token's key-encryption key (another token's, altered, "
                f"or renamed from another secret): {exc}"
            ) from exc

    # -- text secrets ----------------------------------------------------------------------------------
    def _own(self, name: str) -> Path:
        if Path(name).name != name or name in ("", ".", "..") or name.endswith(SEALED_SUFFIX):
            raise ConfigurationError(f"{name!r} is not a secret's name")
        return self.directory / (name + SEALED_SUFFIX)

    def get(self, name: str) -> str:
        if name in self.mounted:
            try:
                return self.mounted[name].read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(str(exc)) from exc
        path = self._own(name)
        try:
            st = path.stat()
            key = (name, st.st_ino, st.st_mtime_ns, st.st_size)
            if key in self._opened:
                return self._opened[key]
            data = path.read_bytes()
        except OSError as exc:
            if self.token_secret(name) is not None:
                raise ConfigurationError(
                    f"{name} is a key inside PKCS#11 token {self.token.label!r}: it is used there, never read out"
                ) from exc
            raise ConfigurationError(str(exc)) from exc
        value = self._opened[key] = self._open(name, data).strip()
        return value

    def _write(self, name: str, value: str, *, replace: bool) -> None:
        path = self._own(name)
        private_dir(self.directory)
        if not replace and path.exists():
            return
        create_private(path, self._seal(name, value), replace=replace)

    def create(self, name: str, value: str) -> None:
        if name in self.mounted or self._own(name).exists():
            return
        if self.token_secret(name) is None:  # searched only when no sealed file is there: a search is slow
            self._write(name, value, replace=False)

    def replace(self, name: str, value: str) -> None:
        self._write(name, value, replace=True)
        self.forget_token_secret(name)  # the new value is imported into the token on its first use

    def exists(self, name: str) -> bool:
        if name in self.mounted:
            return self.mounted[name].exists()
        if self._own(name).exists():
            return True
        return self._find_private(name) is not None or self.token_secret(name) is not None

    def names(self) -> list[str]:
        sealed = (
            [p.name[: -len(SEALED_SUFFIX)] for p in self.directory.iterdir() if p.name.endswith(SEALED_SUFFIX)]
            if self.directory.is_dir()
            else []
        )
        mounted = [name for name, path in self.mounted.items() if path.exists()]
        return sorted({*sealed, *mounted, *self._signing_labels(), *self.token_secret_names()})

    def where(self, name: str) -> str:
        if name in self.mounted:
            return str(self.mounted[name])
        sealed = self._own(name)
        if not sealed.exists() and self.token_secret(name) is not None:
            return f"PKCS#11 token {self.token.label!r}, key {self.label_of(name)!r}"
        if not sealed.exists() and self._find_private(name) is not None:
            return f"PKCS#11 token {self.token.label!r}, key {name!r}"
        return f"{sealed} (sealed by PKCS#11 token {self.token.label!r})"

    # -- signing keys ----------------------------------------------------------------------------------
    def _signing_labels(self) -> list[str]:
        pkcs11 = _pkcs11()

        def labels(session: Any) -> list[str]:
            found = session.get_objects(
                {
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                    pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.EC_EDWARDS,
                }
            )
            return [str(obj[pkcs11.Attribute.LABEL]) for obj in found]

        return self.token.run("list its keys", labels)

    def _find_private(self, name: str) -> Any | None:
        pkcs11 = _pkcs11()

        def find(session: Any) -> Any | None:
            try:
                return session.get_key(pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.KeyType.EC_EDWARDS, label=name)
            except pkcs11.exceptions.NoSuchKey:
                return None

        return self.token.run("find a key", find)

    def signing_key(self, name: str) -> SigningKey:
        pkcs11 = _pkcs11()

        def load(session: Any) -> tuple[Any, bytes]:
            private = session.get_key(pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.KeyType.EC_EDWARDS, label=name)
            public = session.get_key(pkcs11.ObjectClass.PUBLIC_KEY, pkcs11.KeyType.EC_EDWARDS, label=name)
            return private, bytes(public[pkcs11.Attribute.EC_POINT])

        try:
            private, point = self.token.run(f"find signing key {name!r}", load)
        except ConfigurationError as exc:
            raise ConfigurationError(f"cannot read signing key {self.where(name)}: {exc}") from exc
        return TokenSigningKey(self.token, private, Ed25519PublicKey.from_public_bytes(_public_raw(point)))

    def _label(self, agency: str, public_raw: bytes) -> str:
        return f"{agency}-{key_id_for(agency, public_raw).split(':')[1]}"

    def new_signing_key(self, agency: str) -> tuple[str, SigningKey]:
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        from pkcs11.util.ec import encode_named_curve_parameters

        def generate(session: Any) -> tuple[str, Any, bytes]:
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC_EDWARDS, {attr.EC_PARAMS: encode_named_curve_parameters(_ED25519_OID)}, local=True
            )
            pending = "pending-" + pysecrets.token_hex(8)  # labelled by fingerprint once the token made it
            public, private = params.generate_keypair(
                store=True,
                label=pending,
                private_template={attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.PRIVATE: True},
            )
            point = bytes(public[attr.EC_POINT])
            name = self._label(agency, _public_raw(point))
            public[attr.LABEL] = name
            private[attr.LABEL] = name
            return name, private, point

        name, private, point = self.token.run("make a signing key", generate)
        return name, TokenSigningKey(self.token, private, Ed25519PublicKey.from_public_bytes(_public_raw(point)))

    def adopt_signing_key(self, source: Path) -> str:
        """Imports the deployment's Ed25519 PEM into the token (sensitive, not extractable); the node signs with
        the token's copy from then on and never reads ``source`` again."""
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        from pkcs11.util.ec import encode_named_curve_parameters

        try:
            key = serialization.load_pem_private_key(source.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read signing key {source}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"{source} is not an Ed25519 private key")
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        secret = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        name = self._label("adopted", raw)  # the key id's fingerprint is the public key's alone
        params = encode_named_curve_parameters(_ED25519_OID)

        def imported(session: Any) -> None:
            common = {attr.KEY_TYPE: pkcs11.KeyType.EC_EDWARDS, attr.EC_PARAMS: params, attr.TOKEN: True}
            session.create_object(
                {
                    **common,
                    attr.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                    attr.VALUE: secret,
                    attr.LABEL: name,
                    attr.SIGN: True,
                    attr.SENSITIVE: True,
                    attr.EXTRACTABLE: False,
                    attr.PRIVATE: True,
                }
            )
            session.create_object(
                {
                    **common,
                    attr.CLASS: pkcs11.ObjectClass.PUBLIC_KEY,
                    attr.EC_POINT: b"\x04\x20" + raw,
                    attr.LABEL: name,
                    attr.VERIFY: True,
                }
            )

        if self._find_private(name) is None:
            self.token.run("import a signing key", imported)
        return name
