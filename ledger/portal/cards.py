"""Card authentication at the portal, in the shape of JPKI's 利用者証明用電子証明書 (issue 19).

A card holds an Ed25519 key pair and a **certificate** from a card issuer (J-LIS in Japan; here any issuer whose
public key the portal's config trusts, ``linkage.card_issuers``). Signing in: the portal hands out a one-time
challenge (``ledger.portal.sign_ins``), the card signs it, and :func:`verify` checks the certificate's
signature under a trusted issuer's key, its validity period and the issuer's revocations, then the card's
signature over the challenge — and only then opens the number the certificate carries.

**No number in plaintext in the certificate.** Like the real user-certificate, which names no one (the portal
learns the person from J-LIS by the certificate's serial), the certificate binds a serial and the card's key;
the number rides in it **sealed to the portal's X25519 sealing key** (HPKE, the linkage's suite, its ``info``
binding the issuer and serial). Anyone reading the card — a certificate is readable without the PIN — or the
sign-in on the way learns nothing but the serial. Chosen over an issuer's serial→number table at the portal
(the closer shape) because the portal then keeps no table of numbers at all: it opens the number in memory,
maps it to its own code (``portal_code``) and forgets it, as it did before. The price: a certificate is made
for one portal sealing key (a new sealing key needs new certificates; the portal's keys are not rotated today).

A revoked card — the issuer revokes the old card at a number change, or a lost one — is refused
(``card_revoked``) from the issuer's signed :class:`Revocations`; the hub's ``superseded`` page refuses the
old number's card too (``ledger.portal.rules``), whichever reaches the portal first.

:class:`CardIssuer` and :class:`Card` are the issuer's and the card's side: the tests' and the demo's stand-ins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ledger.errors import AuthError, Code, InputError, PermissionDenied
from ledger.linkage.sealing import SUITE
from ledger.log.pseudonym import valid_individual_number

__all__ = [
    "Card",
    "CardHolder",
    "CardIssuer",
    "Certificate",
    "Revocations",
    "challenge_message",
    "issuers_from",
    "verify",
]

_CERT = b"flagledger/portal/card-certificate/1\x00"
_CHALLENGE = b"flagledger/portal/card-sign-in/1\x00"
_REVOKED = b"flagledger/portal/card-revocations/1\x00"
_SEALED = b"flagledger/portal/card-number/1\x00"
MAX_CERTIFICATE = 4096  # characters of a certificate's text: far more than one needs


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _public(raw_hex: str, what: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw_hex))
    except (ValueError, TypeError):
        raise InputError(f"{what} is not an Ed25519 public key (64 hex digits)", code=Code.MALFORMED) from None


def _time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("a time without its offset")
    return at


def challenge_message(challenge: bytes, portal: str) -> bytes:
    """What a card signs to sign in: the challenge, bound to this use and to the portal that issued it."""
    return _CHALLENGE + portal.encode() + b"\x00" + challenge


def issuers_from(linkage: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The card issuers the portal trusts: config.json's ``linkage.card_issuers``, ``{name: public hex}``."""
    raw = linkage.get("card_issuers", {})
    if not isinstance(raw, dict):
        raise InputError("linkage.card_issuers must map each issuer's name to its public key", code=Code.CONFIGURATION)
    return {str(name): _public(str(key), f"card issuer {name}'s key") for name, key in raw.items()}


@dataclass(frozen=True)
class Certificate:
    """A card's certificate: the issuer, its serial, the card's public key, when it is valid, the number sealed
    to the portal, and the issuer's signature over all of it."""

    issuer: str
    serial: str
    card_key: str  # hex of the card's Ed25519 public key
    not_before: str
    not_after: str
    sealed_number: str = field(repr=False)  # hex: HPKE to the portal's sealing key
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "v": 1,
            "issuer": self.issuer,
            "serial": self.serial,
            "card_key": self.card_key,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "sealed_number": self.sealed_number,
        }

    def encode(self) -> str:
        """The certificate's text, as the card gives it (and a client sends it)."""
        return _canonical({**self.body(), "signature": self.signature}).decode()

    @classmethod
    def decode(cls, text: str) -> Certificate:
        """Parse strictly; a certificate that does not parse is refused as not the issuer's (``card_certificate``)."""
        try:
            if len(text) > MAX_CERTIFICATE:
                raise ValueError("too long")
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != 1 or set(data) != {*cls._names(), "v"}:
                raise ValueError("not a certificate")
            values = {k: data[k] for k in cls._names()}
            if not all(isinstance(v, str) and v for v in values.values()):
                raise ValueError("a field is not text")
            cert = cls(**values)
            _time(cert.not_before), _time(cert.not_after)
            bytes.fromhex(cert.sealed_number), bytes.fromhex(cert.signature)
        except (ValueError, TypeError):
            raise AuthError("the card's certificate is malformed", code=Code.CARD_CERTIFICATE) from None
        return cert

    @staticmethod
    def _names() -> tuple[str, ...]:
        return ("issuer", "serial", "card_key", "not_before", "not_after", "sealed_number", "signature")


@dataclass(frozen=True)
class CardHolder:
    """Who signed in: the certificate's issuer and serial, and the number it carried (never logged)."""

    issuer: str
    serial: str
    number: str = field(repr=False)


def verify(
    certificate: str,
    signature_hex: str,
    challenge: bytes,
    *,
    portal: str,
    issuers: dict[str, Ed25519PublicKey],
    sealing: X25519PrivateKey,
    revoked: Any,
    now: datetime,
) -> CardHolder:
    """Check a sign-in: the certificate under a trusted issuer (``card_issuer_unknown``, ``card_certificate``),
    valid now (``card_expired``), the card's signature over the challenge (``card_signature``), not revoked
    (``revoked(issuer, serial)``: ``card_revoked``); then open the number. The challenge itself was taken
    (fresh, once) by the caller."""
    cert = Certificate.decode(certificate)
    issuer = issuers.get(cert.issuer)
    if issuer is None:
        raise AuthError(
            "the card's certificate is from an issuer this portal does not trust", code=Code.CARD_ISSUER_UNKNOWN
        )
    try:
        issuer.verify(bytes.fromhex(cert.signature), _CERT + _canonical(cert.body()))
    except InvalidSignature:
        raise AuthError("the card's certificate is not its issuer's", code=Code.CARD_CERTIFICATE) from None
    if not _time(cert.not_before) <= now < _time(cert.not_after):
        raise AuthError("the card's certificate is not valid now", code=Code.CARD_EXPIRED)
    try:
        card = _public(cert.card_key, "the card's key")
        card.verify(bytes.fromhex(signature_hex), challenge_message(challenge, portal))
    except (InvalidSignature, InputError, ValueError):
        raise AuthError("the card's signature over the challenge does not verify", code=Code.CARD_SIGNATURE) from None
    # only after the card's own signature: a copy of a certificate (readable from the card without its PIN) must
    # not tell whoever holds it that the card was revoked — after a number change, that the person fled
    if revoked(cert.issuer, cert.serial):
        raise PermissionDenied("this card was revoked by its issuer", code=Code.CARD_REVOKED)
    try:
        number = SUITE.decrypt(bytes.fromhex(cert.sealed_number), sealing, info=_sealed_info(cert)).decode()
    except (InvalidTag, ValueError):
        # signed by a trusted issuer, yet not for this portal's key: a certificate made for another portal
        raise AuthError("the card's certificate was not made for this portal", code=Code.CARD_CERTIFICATE) from None
    if not valid_individual_number(number):
        raise AuthError("the card's certificate carries no individual number", code=Code.CARD_CERTIFICATE)
    return CardHolder(cert.issuer, cert.serial, number)


def _sealed_info(cert: Certificate) -> bytes:
    return _SEALED + cert.issuer.encode() + b"\x00" + cert.serial.encode()


@dataclass(frozen=True)
class Revocations:
    """An issuer's signed list of revoked serials (a number change revokes the old card; a lost card)."""

    issuer: str
    serials: tuple[str, ...]
    issued_at: str
    signature: str = ""

    def body(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "serials": list(self.serials), "issued_at": self.issued_at}

    def encode(self) -> str:
        return _canonical({**self.body(), "signature": self.signature}).decode()

    @classmethod
    def checked(cls, text: str, issuers: dict[str, Ed25519PublicKey]) -> Revocations:
        """Parse and check under a trusted issuer's key; InputError (``malformed``, ``card_issuer_unknown``,
        ``card_certificate``) otherwise — nothing of an unchecked list is kept."""
        try:
            data = json.loads(text)
            serials = data["serials"]
            if not isinstance(serials, list) or not all(isinstance(s, str) and s for s in serials):
                raise ValueError("serials")
            made = cls(str(data["issuer"]), tuple(serials), str(data["issued_at"]), str(data["signature"]))
            _time(made.issued_at)
        except (ValueError, KeyError, TypeError):
            raise InputError("not an issuer's revocation list", code=Code.MALFORMED) from None
        key = issuers.get(made.issuer)
        if key is None:
            raise InputError(
                "a revocation list from an issuer this portal does not trust", code=Code.CARD_ISSUER_UNKNOWN
            )
        try:
            key.verify(bytes.fromhex(made.signature), _REVOKED + _canonical(made.body()))
        except (InvalidSignature, ValueError):
            raise InputError("the revocation list is not its issuer's", code=Code.CARD_CERTIFICATE) from None
        return made


# -- the issuer's and the card's side (J-LIS and the card: stand-ins for the tests and the demo) ----------------
class CardIssuer:
    def __init__(self, name: str, key: Ed25519PrivateKey | None = None) -> None:
        self.name = name
        self.key = key or Ed25519PrivateKey.generate()
        self._serial = 0

    @property
    def public_hex(self) -> str:
        return self.key.public_key().public_bytes_raw().hex()

    def issue(self, number: str, portal_sealing: X25519PublicKey, not_before: datetime, not_after: datetime) -> Card:
        """A new card for ``number``: its key pair and a certificate sealed to the portal's sealing key."""
        self._serial += 1
        serial = f"{self.name}-{self._serial:08d}"
        card_key = Ed25519PrivateKey.generate()
        unsigned = Certificate(
            self.name,
            serial,
            card_key.public_key().public_bytes_raw().hex(),
            not_before.astimezone(UTC).isoformat(),
            not_after.astimezone(UTC).isoformat(),
            "",
        )
        sealed = SUITE.encrypt(number.encode(), portal_sealing, info=_sealed_info(unsigned))
        cert = Certificate(**{**unsigned.__dict__, "sealed_number": sealed.hex()})
        signed = Certificate(**{**cert.__dict__, "signature": self.key.sign(_CERT + _canonical(cert.body())).hex()})
        return Card(card_key, signed)

    def revoke(self, serials: list[str], at: datetime) -> Revocations:
        unsigned = Revocations(self.name, tuple(serials), at.astimezone(UTC).isoformat())
        return Revocations(
            **{**unsigned.__dict__, "signature": self.key.sign(_REVOKED + _canonical(unsigned.body())).hex()}
        )


@dataclass(frozen=True)
class Card:
    key: Ed25519PrivateKey
    certificate: Certificate

    def sign(self, challenge: bytes, portal: str = "portal") -> str:
        return self.key.sign(challenge_message(challenge, portal)).hex()
