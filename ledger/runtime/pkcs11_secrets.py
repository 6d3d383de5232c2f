"""Secret keys used inside the PKCS#11 token (issue #22): HMAC keys and the data key-encryption key.

A secret only ever used as an HMAC key (the pseudonym secret, each agency's stream id key and code secret, the
portal's code secret, the hub's person-id secret) or as a key-encryption key (the per-subject data keys'
``data-kek.key``) is a token object, not a sealed file: a generic secret (``CKM_SHA256_HMAC``) or an AES key
(``CKM_AES_GCM``), sensitive and not extractable, so the running process computes with it and never reads it.

* **Made inside the token** (``CKM_GENERIC_SECRET_KEY_GEN`` / ``CKM_AES_KEY_GEN``, 256 bits) when the node makes
  it: it has never been outside (CKA_NEVER_EXTRACTABLE).
* **Imported** when it already exists as a sealed file (a node made before this, or a secret handed over: the
  shared pseudonym secret): on first use its value is opened once, put into the token as a sensitive,
  non-extractable object, and the sealed file is deleted. The HMAC of a given secret is the same in the token
  as in Python, and an AES-GCM wrap the same, so existing ids and wrapped keys still resolve. An imported key
  was in memory once (CKA_NEVER_EXTRACTABLE false); only rotation to a token-made one removes that, and rotating
  an id secret re-keys every id derived from it (not built: docs/keys.md).

Objects are labelled ``<prefix>/<name>``, the prefix a random tag kept in the node's secrets directory
(``.pkcs11-prefix``, not secret), so nodes sharing one token (a hub, a portal and agencies in one HSM partition;
the test run's one SoftHSM2 token) never take each other's keys.
"""

from __future__ import annotations

import fcntl
import os
import secrets as pysecrets
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from ledger.errors import Code, ConfigurationError, IntegrityError
from ledger.files import create_private, private_dir
from ledger.log.keyed_hash import KeyedHash
from ledger.runtime.pkcs11_token import TokenSession
from ledger.runtime.pkcs11_token import pkcs11_module as _pkcs11

__all__ = ["PREFIX_FILE", "TokenKek", "TokenSecretKeys"]

PREFIX_FILE = ".pkcs11-prefix"
_NONCE = 12


class TokenSecretKeys:
    """The part of :class:`ledger.runtime.pkcs11_keystore.Pkcs11KeyStore` for secret keys used inside the token."""

    token: TokenSession
    directory: Path
    mounted: dict[str, Path]

    def __init__(self) -> None:
        self._prefix = ""
        self._handles: dict[str, Any] = {}
        self._import_lock = threading.Lock()

    # -- what the store supplies ---------------------------------------------------------------------
    def get(self, name: str) -> str:
        raise NotImplementedError

    def _own(self, name: str) -> Path:
        raise NotImplementedError

    def where(self, name: str) -> str:
        raise NotImplementedError

    # -- labels --------------------------------------------------------------------------------------
    def label_of(self, name: str) -> str:
        """The token object's label of secret ``name`` for this node."""
        if not self._prefix:
            path = self.directory / PREFIX_FILE
            private_dir(self.directory)
            create_private(path, (pysecrets.token_hex(8) + "\n").encode())  # the first of two racing makers wins
            self._prefix = path.read_text().strip()
        return f"{self._prefix}/{name}"

    def _find(self, session: Any, name: str, key_type: Any) -> Any | None:
        pkcs11 = _pkcs11()
        try:
            return session.get_key(pkcs11.ObjectClass.SECRET_KEY, key_type, label=self.label_of(name))
        except pkcs11.exceptions.NoSuchKey:
            return None
        except pkcs11.exceptions.MultipleObjectsReturned:
            raise ConfigurationError(
                f"the PKCS#11 token {self.token.label!r} holds more than one {self.label_of(name)!r}"
            ) from None

    def token_secret(self, name: str) -> Any | None:
        """The token's object of secret ``name`` (either kind), if there is one."""
        pkcs11 = _pkcs11()

        def find(session: Any) -> Any | None:
            found = list(
                session.get_objects(
                    {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY, pkcs11.Attribute.LABEL: self.label_of(name)}
                )
            )
            return found[0] if found else None

        return self.token.run("find a secret key", find)

    def token_secret_names(self) -> list[str]:
        pkcs11 = _pkcs11()
        prefix = self.label_of("")

        def labels(session: Any) -> list[str]:
            found = session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY})
            return [str(obj[pkcs11.Attribute.LABEL]) for obj in found]

        return [label[len(prefix) :] for label in self.token.run("list its keys", labels) if label.startswith(prefix)]

    def forget_token_secret(self, name: str) -> None:
        """Destroy the token's object of ``name`` (its value is being replaced: the new one is imported on use)."""
        self._handles.pop(name, None)
        found = self.token_secret(name)
        if found is not None:
            self.token.run("destroy a replaced key", lambda _s: found.destroy())

    # -- the keys --------------------------------------------------------------------------------------
    def _template(self, kind: str) -> dict[Any, Any]:
        attr = _pkcs11().Attribute
        usage = {attr.SIGN: True, attr.VERIFY: True} if kind == "hmac" else {attr.ENCRYPT: True, attr.DECRYPT: True}
        return {attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.PRIVATE: True, **usage}

    def _key_type(self, kind: str) -> Any:
        pkcs11 = _pkcs11()
        return pkcs11.KeyType.GENERIC_SECRET if kind == "hmac" else pkcs11.KeyType.AES

    def secret_key(self, name: str, kind: str, *, make: bool = False) -> Any:
        """The token's key ``name`` (``kind`` "hmac" or "aes"): found, imported from its sealed (or mounted)
        file, or — ``make`` — made inside the token."""
        handle = self._handles.get(name)
        if handle is not None:
            return handle
        with self._import_lock, self._process_lock():
            handle = self._handles[name] = self._find_or_place(name, kind, make=make)
        return handle

    def _find_or_place(self, name: str, kind: str, *, make: bool) -> Any:
        pkcs11 = _pkcs11()
        key_type = self._key_type(kind)
        attr = pkcs11.Attribute
        sealed = self._own(name)
        found = self.token.run("find a secret key", lambda s: self._find(s, name, key_type))
        if found is None and (name in self.mounted or sealed.exists()):
            try:
                value = bytes.fromhex(self.get(name))  # once, to import it; never again
            except ValueError as exc:
                raise ConfigurationError(f"the secret {self.where(name)} is not hex") from exc

            def put(session: Any) -> Any:
                template = {
                    attr.CLASS: pkcs11.ObjectClass.SECRET_KEY,
                    attr.KEY_TYPE: key_type,
                    attr.VALUE: value,
                    attr.LABEL: self.label_of(name),
                    attr.TOKEN: True,
                    **self._template(kind),
                }
                return session.create_object(template)

            self.token.run(f"import the secret {name}", put)
            found = self.token.run("find a secret key", lambda s: self._find(s, name, key_type))
        elif found is None and make:

            def generate(session: Any) -> Any:
                return session.generate_key(
                    key_type, 256, label=self.label_of(name), store=True, template=self._template(kind)
                )

            found = self.token.run(f"make the secret {name}", generate)
        if found is None:
            raise ConfigurationError(f"no secret {name!r} in PKCS#11 token {self.token.label!r} nor {sealed}")
        with suppress(FileNotFoundError):  # the token's object is the secret now: no sealed copy stays
            sealed.unlink()
        return found

    def _process_lock(self) -> _FileLock:
        self.label_of("")  # makes the prefix file, which is also the lock
        return _FileLock(self.directory / PREFIX_FILE)

    def new_hmac_key(self, name: str) -> None:
        """A 256-bit HMAC key ``name``, made inside the token, unless one is held (in the token or sealed)."""
        if name not in self.mounted:
            self.secret_key(name, "hmac", make=True)

    def keyed_hash(self, name: str) -> KeyedHash:
        key = self.secret_key(name, "hmac")
        mechanism = _pkcs11().Mechanism.SHA256_HMAC

        def mac(data: bytes) -> bytes:
            digest: bytes = self.token.run("compute an HMAC", lambda _s: key.sign(data, mechanism=mechanism))
            return digest

        return KeyedHash(mac, f"PKCS#11 token {self.token.label!r}, key {self.label_of(name)!r}")

    def hmac(self, name: str, data: bytes) -> bytes:
        return self.keyed_hash(name)(data)

    def key_wrapper(self, name: str) -> TokenKek:
        return TokenKek(self, name)


class TokenKek:
    """A :class:`ledger.log.datakeys.KeyWrapper` whose AES-256 key-encryption key is in the token: data keys
    are wrapped and unwrapped there (AES-GCM, the ref as associated data; the bytes are those of
    :class:`ledger.log.datakeys.AesKek`, so keys wrapped under an imported file KEK still unwrap). The KEK is
    made inside the token on first use (a node that never keeps a person's data key never makes one)."""

    def __init__(self, keys: TokenSecretKeys, name: str) -> None:
        self._keys = keys
        self.name = name

    def _params(self, nonce: bytes, ref: bytes) -> Any:
        return _pkcs11().mechanisms.GCMParams(nonce, ref, 128)

    def wrap(self, key: bytes, ref: bytes) -> bytes:
        kek = self._keys.secret_key(self.name, "aes", make=True)
        nonce = os.urandom(_NONCE)
        params, mechanism = self._params(nonce, ref), _pkcs11().Mechanism.AES_GCM
        sealed: bytes = self._keys.token.run(
            "wrap a data key", lambda _s: kek.encrypt(key, mechanism=mechanism, mechanism_param=params)
        )
        return nonce + sealed

    def unwrap(self, wrapped: bytes, ref: bytes) -> bytes:
        kek = self._keys.secret_key(self.name, "aes", make=True)
        params, mechanism = self._params(wrapped[:_NONCE], ref), _pkcs11().Mechanism.AES_GCM
        try:
            key: bytes = self._keys.token.run(
                "unwrap a data key",
                lambda _s: kek.decrypt(wrapped[_NONCE:], mechanism=mechanism, mechanism_param=params),
            )
        except ConfigurationError as exc:
            raise IntegrityError(
                f"a data key does not unwrap under this node's key-encryption key in the token: {exc}",
                code=Code.UNDECRYPTABLE,
            ) from exc
        return key


class _FileLock:
    """An exclusive lock between processes of one node while a key is imported or made (two would make two)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
