"""The portal's card check (``ledger.portal.cards``, issue 19), in the shape of JPKI's user certificate.

Threat: the perpetrator — anyone who can reach the portal, with someone else's card number but not the card. A
certificate they forge, one from an issuer the portal does not trust, a signature made without the card's key,
an expired or a revoked card all sign no one in; nothing in a certificate shows the number in clear.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import AuthError, Code, ConfigurationError, FlagLedgerError, InputError, PermissionDenied
from ledger.portal.cards import Card, CardIssuer, Certificate, Revocations, verify
from ledger.portal.sign_ins import SignInSettings
from tests.support.people import individual_number

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
PORTAL_KEY = X25519PrivateKey.generate()


def issue(issuer: CardIssuer, number: str, days: int = 365) -> Card:
    return issuer.issue(number, PORTAL_KEY.public_key(), NOW - timedelta(days=1), NOW + timedelta(days=days))


def check(card_or_cert: Card | str, challenge: bytes, signature: str, *, trusted: CardIssuer, **kw: object) -> str:
    cert = card_or_cert.certificate.encode() if isinstance(card_or_cert, Card) else card_or_cert
    holder = verify(
        cert,
        signature,
        challenge,
        portal="portal",
        issuers={trusted.name: trusted.key.public_key()},
        sealing=kw.get("sealing", PORTAL_KEY),  # type: ignore[arg-type]
        revoked=kw.get("revoked", lambda issuer, serial: False),
        now=kw.get("now", NOW),  # type: ignore[arg-type]
    )
    return holder.number


def refused(*args: object, **kw: object) -> str:
    with pytest.raises(FlagLedgerError) as caught:
        check(*args, **kw)  # type: ignore[arg-type]
    return caught.value.code


def test_the_card_signs_in_and_its_certificate_shows_no_number() -> None:
    """Threat: the perpetrator reading the card or the sign-in on the way (a certificate is readable without the
    PIN): the number is sealed to the portal; only the portal's key opens it."""
    jlis, number, challenge = CardIssuer("J-LIS"), individual_number(), os.urandom(32)
    card = issue(jlis, number)
    assert check(card, challenge, card.sign(challenge), trusted=jlis) == number
    text = card.certificate.encode()
    assert number not in text and number not in bytes.fromhex(card.certificate.sealed_number).decode("latin-1")
    assert refused(card, challenge, card.sign(challenge), trusted=jlis, sealing=X25519PrivateKey.generate()) == (
        Code.CARD_CERTIFICATE  # a certificate made for another portal's key does not open here
    )


def test_a_forged_certificate_for_a_known_number_is_refused() -> None:
    """Threat: the perpetrator with X's number, minting a certificate with their own key as the card's and
    signing it with a key of their own under the trusted issuer's name — or changing a real certificate's key."""
    jlis, number, challenge = CardIssuer("J-LIS"), individual_number(), os.urandom(32)
    forger = CardIssuer("J-LIS")  # the same name, another key
    forged = issue(forger, number)
    assert refused(forged, challenge, forged.sign(challenge), trusted=jlis) == Code.CARD_CERTIFICATE

    real, mine = issue(jlis, number), Ed25519PrivateKey.generate()
    body = json.loads(real.certificate.encode())
    body["card_key"] = mine.public_key().public_bytes_raw().hex()  # the victim's certificate, the perpetrator's key
    swapped = json.dumps(body)
    assert refused(swapped, challenge, Card(mine, real.certificate).sign(challenge), trusted=jlis) == (
        Code.CARD_CERTIFICATE
    )
    for bad in ("", "{}", "not json", json.dumps({**body, "extra": "x"}), "x" * 5000):
        assert refused(bad, challenge, real.sign(challenge), trusted=jlis) == Code.CARD_CERTIFICATE


def test_an_issuer_the_portal_does_not_trust_is_refused() -> None:
    """Threat: the perpetrator running their own "issuer" whose certificates are well made."""
    jlis, rogue, challenge = CardIssuer("J-LIS"), CardIssuer("ROGUE"), os.urandom(32)
    card = issue(rogue, individual_number())
    assert refused(card, challenge, card.sign(challenge), trusted=jlis) == Code.CARD_ISSUER_UNKNOWN


def test_a_signature_without_the_cards_key_is_refused() -> None:
    """Threat: the perpetrator holding a copy of X's certificate (readable from the card) but not its key: a
    signature by another key, over another challenge, or for another portal does not verify."""
    jlis, challenge = CardIssuer("J-LIS"), os.urandom(32)
    card = issue(jlis, individual_number())
    other = Card(Ed25519PrivateKey.generate(), card.certificate)
    assert refused(card, challenge, other.sign(challenge), trusted=jlis) == Code.CARD_SIGNATURE
    assert refused(card, challenge, card.sign(os.urandom(32)), trusted=jlis) == Code.CARD_SIGNATURE
    assert refused(card, challenge, card.sign(challenge, portal="elsewhere"), trusted=jlis) == Code.CARD_SIGNATURE
    assert refused(card, challenge, "zz" * 64, trusted=jlis) == Code.CARD_SIGNATURE


def test_an_expired_or_not_yet_valid_card_is_refused() -> None:
    """Threat: the perpetrator with an old card of X's (kept after it was replaced by a renewal)."""
    jlis, challenge = CardIssuer("J-LIS"), os.urandom(32)
    card = issue(jlis, individual_number(), days=10)
    assert refused(card, challenge, card.sign(challenge), trusted=jlis, now=NOW + timedelta(days=10)) == (
        Code.CARD_EXPIRED
    )
    assert refused(card, challenge, card.sign(challenge), trusted=jlis, now=NOW - timedelta(days=2)) == (
        Code.CARD_EXPIRED
    )
    assert check(card, challenge, card.sign(challenge), trusted=jlis, now=NOW + timedelta(days=9))


def test_a_revoked_card_is_refused_and_only_the_issuers_list_revokes() -> None:
    """Threat: the perpetrator keeping X's old card after a number change (the issuer revokes it), or holding only
    a copy of its certificate — which must not tell them the card was revoked. A revocation list not signed by
    the trusted issuer is refused, so nobody revokes someone else's card by forging one."""
    jlis, challenge = CardIssuer("J-LIS"), os.urandom(32)
    card = issue(jlis, individual_number())
    serial = card.certificate.serial
    listed = Revocations.checked(jlis.revoke([serial], NOW).encode(), {"J-LIS": jlis.key.public_key()})
    assert listed.serials == (serial,)
    gone = set(listed.serials)
    with pytest.raises(PermissionDenied) as caught:
        check(card, challenge, card.sign(challenge), trusted=jlis, revoked=lambda i, s: i == "J-LIS" and s in gone)
    assert caught.value.code == Code.CARD_REVOKED
    copied = Card(Ed25519PrivateKey.generate(), card.certificate)  # the certificate read off X's card, no key
    assert refused(card, challenge, copied.sign(challenge), trusted=jlis, revoked=lambda i, s: True) == (
        Code.CARD_SIGNATURE  # not card_revoked: the copy does not tell that X's card (X's number) was replaced
    )

    forged = CardIssuer("J-LIS").revoke([serial], NOW).encode()
    with pytest.raises(InputError) as bad:
        Revocations.checked(forged, {"J-LIS": jlis.key.public_key()})
    assert bad.value.code == Code.CARD_CERTIFICATE
    with pytest.raises(InputError) as unknown:
        Revocations.checked(CardIssuer("ROGUE").revoke([serial], NOW).encode(), {"J-LIS": jlis.key.public_key()})
    assert unknown.value.code == Code.CARD_ISSUER_UNKNOWN


def test_a_certificate_round_trips_and_names_its_fields_strictly() -> None:
    """Threat: the perpetrator sending a certificate with a field missing or of another type (a parser that
    took it would sign in on defaults)."""
    card = issue(CardIssuer("J-LIS"), individual_number())
    assert Certificate.decode(card.certificate.encode()) == card.certificate
    body = json.loads(card.certificate.encode())
    for field in ("serial", "signature", "not_after"):
        broken = {k: v for k, v in body.items() if k != field}
        with pytest.raises(AuthError):
            Certificate.decode(json.dumps(broken))
    with pytest.raises(AuthError):
        Certificate.decode(json.dumps({**body, "serial": 7}))
    with pytest.raises(AuthError):
        Certificate.decode(json.dumps({**body, "not_after": "2030-01-01T00:00:00"}))  # no offset


def test_challenges_and_sessions_stay_short_lived() -> None:
    """Threat: the perpetrator finding a token left on a shared computer, or a challenge seen on the way:
    ``linkage.card_sign_in`` may not make either last long (a session at most an hour), nor name anything else."""
    assert SignInSettings.from_linkage({}) == SignInSettings(120.0, 600.0)
    assert SignInSettings.from_linkage({"card_sign_in": {"session_seconds": 300}}).session_seconds == 300.0
    bads: list[object] = [
        {"session_seconds": 86_400},
        {"challenge_seconds": 0},
        {"challenge": 60},
        {"session_seconds": "soon"},
        [],
    ]
    for bad in bads:
        with pytest.raises(ConfigurationError):
            SignInSettings.from_linkage({"card_sign_in": bad})
