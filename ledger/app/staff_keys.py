"""A person's staff key (docs/staff-signing.md): the unlocked signer, its wrapping under the person's password
(argon2id, then AES-GCM), its sealing for the steps of a sign-in or for a session, and the signatures made
elsewhere (their staff key in the browser, their security key's assertion) that an act may carry instead.

What a node does with them — enrolment, activation, unlocking, the keys this process holds — is
:class:`ledger.app.credentials.CredentialCommands`'s.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.domain.staff_acts import staff_key_id
from ledger.errors import AuthError, Code

__all__ = [
    "KdfCost",
    "StaffProof",
    "StaffSigner",
    "WebAuthnProof",
    "password_matches",
    "set_kdf_cost",
    "unwrap_key",
]


@dataclass(frozen=True)
class KdfCost:
    """argon2id cost, for the password hash and for the key that wraps the staff key (RFC 9106's second
    recommended option by default). Recorded with each wrapped key, so a change applies to new passwords."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def label(self) -> str:
        return f"argon2id:t={self.time_cost},m={self.memory_kib},p={self.parallelism}"

    @classmethod
    def parse(cls, label: str) -> KdfCost:
        try:
            kind, _, params = label.partition(":")
            values = dict(p.split("=") for p in params.split(","))
            if kind != "argon2id":
                raise ValueError(kind)
            return cls(int(values["t"]), int(values["m"]), int(values["p"]))
        except (KeyError, ValueError) as exc:
            raise AuthError("the stored credential names an unknown key derivation", code=Code.NO_CREDENTIAL) from exc


_cost = KdfCost()


def set_kdf_cost(cost: KdfCost) -> None:
    """Cost for passwords set from now on (the test suite lowers it; never lower it on a node)."""
    global _cost
    _cost = cost


class StaffSigner:
    """One person's unlocked staff key."""

    def __init__(self, agency: str, staff: str, private: Ed25519PrivateKey) -> None:
        self.agency, self.staff, self._private = agency, staff, private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()
        self.key_id = staff_key_id(agency, raw)

    def sign(self, message: bytes) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": self._private.sign(message).hex()}

    def wrap(self, password: str) -> tuple[str, dict[str, Any]]:
        """(argon2id hash of ``password``, this key wrapped under it): what a credential stores."""
        return _wrap(self._private, password)

    def seal(self) -> tuple[bytes, bytes]:
        """(a fresh random key, this key sealed under it): to keep between the steps of a sign-in, the sealed
        half on one side (the server) and the key on the other (the browser), so neither alone opens it."""
        key = AESGCM.generate_key(bit_length=256)
        nonce, ciphertext = _seal_raw(key, self._private, _sealed_for(self.agency, self.staff))
        return key, nonce + ciphertext

    @classmethod
    def unseal(cls, agency: str, staff: str, key: bytes, sealed: bytes) -> StaffSigner:
        """The signer :meth:`seal` sealed for ``agency``/``staff``; AuthError if ``key`` does not open it."""
        try:
            return cls(agency, staff, _open_raw(key, sealed[:12], sealed[12:], _sealed_for(agency, staff)))
        except (InvalidTag, ValueError) as exc:
            raise AuthError("the sign-in's sealed staff key does not open: sign in again") from exc

    def seal_for_session(self, secret: bytes, session: str) -> dict[str, str]:
        """This key wrapped under a session's random secret (256 bits: no key stretching needed), bound to the
        session's id so that a sealed copy moved to another session opens nothing (ledger/cli/session.py)."""
        aad = _session_aad(self.agency, self.staff, session)
        nonce, ciphertext = _seal_raw(_session_key(secret), self._private, aad)
        return {"nonce": nonce.hex(), "ciphertext": ciphertext.hex()}

    @classmethod
    def unseal_session(
        cls, agency: str, staff: str, sealed: dict[str, str], secret: bytes, session: str
    ) -> StaffSigner:
        try:
            private = _open_raw(
                _session_key(secret),
                bytes.fromhex(sealed["nonce"]),
                bytes.fromhex(sealed["ciphertext"]),
                _session_aad(agency, staff, session),
            )
        except (InvalidTag, KeyError, ValueError) as exc:
            raise AuthError("this session's staff key does not open: sign in again", code=Code.NO_CREDENTIAL) from exc
        return cls(agency, staff, private)


def _sealed_for(agency: str, staff: str) -> bytes:
    return f"flagledger sealed staff key v1\x00{agency}\x00{staff}".encode()


def _seal_raw(key: bytes, private: Ed25519PrivateKey, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext): the raw private key under AES-256-GCM, bound to ``aad`` (who, and which sealing)."""
    nonce = secrets.token_bytes(12)
    return nonce, AESGCM(key).encrypt(nonce, _raw(private), aad)


def _open_raw(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> Ed25519PrivateKey:
    """What :func:`_seal_raw` sealed; InvalidTag or ValueError when the key, the nonce or the binding differ."""
    return Ed25519PrivateKey.from_private_bytes(AESGCM(key).decrypt(nonce, ciphertext, aad))


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class StaffProof:
    """A signature made elsewhere with the person's staff key: the key id and the Ed25519 signature over the
    act's statement (:func:`ledger.domain.staff_acts.act_statement`)."""

    key_id: str
    signature: str

    def signed(self) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": self.signature}


@dataclass(frozen=True)
class WebAuthnProof:
    """The person's security key's assertion over the act's statement (the console asks the browser for it
    with challenge = SHA-256 of the statement): the roster's id of the certified credential, the
    authenticator and client data (base64url, as the browser gave them) and the signature (hex). Checked
    by :func:`ledger.log.webauthn_proof.check_assertion`, here and by every reader after."""

    key_id: str
    authenticator_data: str
    client_data: str
    signature: str

    def signed(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "signature": self.signature,
            "authenticator_data": self.authenticator_data,
            "client_data": self.client_data,
        }


def _derive(password: str, salt: bytes, cost: KdfCost) -> bytes:
    return hash_secret_raw(password.encode(), salt, cost.time_cost, cost.memory_kib, cost.parallelism, 32, Type.ID)


def _hasher(cost: KdfCost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism)


def _wrap(private: Ed25519PrivateKey, password: str) -> tuple[str, dict[str, Any]]:
    cost = _cost
    salt = secrets.token_bytes(16)
    nonce, sealed = _seal_raw(_derive(password, salt, cost), private, b"flagledger staff key v1")
    wrapped = {"salt": salt.hex(), "nonce": nonce.hex(), "ciphertext": sealed.hex(), "kdf": cost.label()}
    return _hasher(cost).hash(password), wrapped


def unwrap_key(wrapped: dict[str, Any], password: str) -> Ed25519PrivateKey:
    key = _derive(password, bytes.fromhex(wrapped["salt"]), KdfCost.parse(wrapped["kdf"]))
    try:
        return _open_raw(
            key, bytes.fromhex(wrapped["nonce"]), bytes.fromhex(wrapped["ciphertext"]), b"flagledger staff key v1"
        )
    except InvalidTag as exc:
        raise AuthError("the stored staff key does not open with this password", code=Code.WRONG_PASSWORD) from exc


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher(_cost).verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _session_key(secret: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"flagledger session staff key v1").derive(secret)


def _session_aad(agency: str, staff: str, session: str) -> bytes:
    return f"flagledger session v1|{agency}|{staff}|{session}".encode()
