"""Agency signing keys and the key registry used to check every stored event.

A key id names its agency and the key's fingerprint (``131016:1f2e3d4c5b6a7988``), so a signature can
never be checked against another agency's key by accident.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import Code, ConfigurationError, SignatureError, UntrustedKeyError
from ledger.files import write_private
from ledger.log.envelope import Seal, batch_message

__all__ = ["KeyRecord", "KeyRing", "Signer", "SigningKey", "key_id_for", "public_key_from_hex"]


def key_id_for(agency: str, public_raw: bytes) -> str:
    return f"{agency}:{hashlib.sha256(public_raw).hexdigest()[:16]}"


def public_key_from_hex(value: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    except ValueError as exc:
        raise UntrustedKeyError("malformed Ed25519 public key (64 hex digits expected)") from exc


class SigningKey(Protocol):
    """An Ed25519 private key as a key store hands it out: it signs, and tells its public key. Software keys
    (``Ed25519PrivateKey``) are one; a hardware backend's handle, whose private half never leaves the device,
    is another (ledger.runtime.keystore)."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...


class Signer:
    """Holds one agency's signing key (never written to the ledger); the key comes from the key store."""

    def __init__(self, agency: str, private_key: SigningKey) -> None:
        self.agency = agency
        self._private = private_key
        self.public_key = private_key.public_key()
        self.public_raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = key_id_for(agency, self.public_raw)

    @classmethod
    def generate(cls, agency: str) -> Signer:
        return cls(agency, Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def save(self, path: Path) -> None:
        """Export a software key as PKCS#8 PEM, for deployment tooling making a mounted secret (a node keeps its
        own keys in its key store, ledger.runtime.keystore)."""
        if not isinstance(self._private, Ed25519PrivateKey):
            raise ConfigurationError(f"the signing key {self.key_id} cannot be exported")
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, pem)


@dataclass(frozen=True)
class KeyRecord:
    agency: str
    key_id: str
    public_hex: str
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_from: datetime | None = None
    revocation_reason: str = ""


@dataclass
class KeyRing:
    """Agency → keys with validity periods; fed from the ledger's key events.

    Verified batch signatures are remembered (key id, message, signature) so that a batch of events
    sealed by one signature costs one Ed25519 verification, not one per event.
    """

    _records: dict[str, KeyRecord] = field(default_factory=dict)
    _public: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _verified: dict[tuple[str, bytes, bytes], None] = field(default_factory=dict)
    cache_size: int = 4096
    # (key id, root, seal) of the last batch verify_root verified: its next events skip building the batch
    # message and the cache look-up (figures "audit verify", "ingest")
    _last_root: tuple[str, bytes, Seal] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_records(cls, records: Iterable[KeyRecord]) -> KeyRing:
        """A registry holding exactly ``records`` (as :meth:`records` returned them), revocations included."""
        ring = cls()
        for record in records:  # one record per key id: none is a re-add over a revoked key
            ring.add(record)
        return ring

    def add(self, record: KeyRecord) -> None:
        if record.key_id != key_id_for(record.agency, bytes.fromhex(record.public_hex)):
            raise UntrustedKeyError(f"key id {record.key_id} does not match its public key")
        existing = self._records.get(record.key_id)
        if existing is not None and existing.revoked_from is not None:
            return  # a revoked key never comes back
        self._records[record.key_id] = record
        self._public[record.key_id] = public_key_from_hex(record.public_hex)

    def discard(self, key_id: str) -> None:
        self._records.pop(key_id, None)
        self._public.pop(key_id, None)

    def retire(self, key_id: str, valid_until: datetime) -> None:
        rec = self.get(key_id)
        self._records[key_id] = replace(rec, valid_until=valid_until)

    def revoke(self, key_id: str, effective_from: datetime, reason: str) -> None:
        rec = self.get(key_id)
        self._records[key_id] = replace(rec, revoked_from=effective_from, revocation_reason=reason)
        self._verified.clear()
        self._last_root = None

    def get(self, key_id: str) -> KeyRecord:
        try:
            return self._records[key_id]
        except KeyError:
            raise UntrustedKeyError(f"unknown signing key {key_id}", code=Code.UNKNOWN_KEY) from None

    def revoked(self, key_id: str) -> KeyRecord | None:
        """The key's record if it is revoked (from any time), else None."""
        rec = self._records.get(key_id)
        return rec if rec is not None and rec.revoked_from is not None else None

    def records(self) -> list[KeyRecord]:
        return list(self._records.values())

    def knows_agency(self, agency: str) -> bool:
        return any(r.agency == agency for r in list(self._records.values()))  # a snapshot: keys come on any thread

    def check_key(self, agency: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        """The public key if ``key_id`` is ``agency``'s and valid at ``at``; else UntrustedKeyError."""
        rec = self._records.get(key_id)
        if rec is None:
            if not self.knows_agency(agency):
                raise UntrustedKeyError(f"unknown agency {agency}: no key registered", code=Code.UNKNOWN_AGENCY)
            raise UntrustedKeyError(f"unknown signing key {key_id} for agency {agency}", code=Code.UNKNOWN_KEY)
        if rec.agency != agency:
            raise UntrustedKeyError(f"key {key_id} belongs to {rec.agency}, not {agency}", code=Code.WRONG_AGENCY)
        if rec.revoked_from is not None and at >= rec.revoked_from:
            raise UntrustedKeyError(
                f"key {key_id} was revoked from {rec.revoked_from.isoformat()} ({rec.revocation_reason})",
                code=Code.REVOKED_KEY,
            )
        if at < rec.valid_from:
            raise UntrustedKeyError(
                f"key {key_id} is not valid before {rec.valid_from.isoformat()}", code=Code.KEY_NOT_YET_VALID
            )
        if rec.valid_until is not None and at >= rec.valid_until:
            raise UntrustedKeyError(f"key {key_id} expired at {rec.valid_until.isoformat()}", code=Code.KEY_EXPIRED)
        return self._public[key_id]

    def verify(self, agency: str, key_id: str, at: datetime, message: bytes, signature: bytes) -> None:
        public = self.check_key(agency, key_id, at)
        cache_key = (key_id, message, signature)
        if cache_key in self._verified:
            return
        try:
            public.verify(signature, message)
        except InvalidSignature:
            raise SignatureError(f"signature by {key_id} does not verify") from None
        verified = self._verified
        if len(verified) >= self.cache_size:
            # API requests verify on many threads: another may have evicted (or revoke() cleared) the oldest
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del verified[next(iter(verified))]
        verified[cache_key] = None

    def verify_root(self, agency: str, key_id: str, at: datetime, root: bytes, seal: Seal) -> None:
        """:meth:`verify` of a sealed batch's message (:func:`ledger.log.envelope.batch_message`): its ``root``
        and what ``seal`` carries besides the event's own place (size, log head, extensions, signature)."""
        last = self._last_root
        if last is not None:
            ls = last[2]
            if (
                ls.signature == seal.signature
                and last[1] == root
                and last[0] == key_id
                and ls.size == seal.size
                and ls.log_size == seal.log_size
                and ls.log_root == seal.log_root
                and ls.ext == seal.ext
            ):
                self.check_key(agency, key_id, at)  # verified for this very message: only the key's validity
                return
        message = batch_message(key_id, root, seal.size, seal.log_size, seal.log_root, seal.ext)
        self.verify(agency, key_id, at, message, seal.signature)
        self._last_root = (key_id, root, seal)
