"""A person's map key, bound to their number by a verifiable random function the hub evaluates (issue #20).

A provider checks the leaf at *its* key for the person, and a holder the leaf at *its* key: both checks mean
something only if the hub cannot give the holder one key and the provider another for the same person. Each
agency knows the person by its own code and never learns another agency's, so nothing the agencies hold can
compare the keys; but every agency that registers a person knows their number (it sends it, sealed, in the
registration). So the map key is a VRF of the number under the hub's key:

* the hub evaluates ``pi = VRF_prove(hub key, number)`` when a registration arrives and returns ``pi`` (sealed)
  with its answer; the agency checks ``pi`` against the number it sent and the hub's published VRF public key
  and derives the map key from the VRF output itself (:func:`verify_person_key`), then keeps it beside its code;
* the VRF's output is unique for a number, so two agencies registering one number get one key; a hub that
  answers one of them with another key (another number's proof, a bent one) is refused at registration;
* the output is pseudorandom without the hub's private key: the map key lets no one test a guessed number,
  and it is no more a shared identifier than the number both agencies already know.

The VRF is RSA-FDH-VRF-SHA256 after RFC 9381 §4 (suite byte 0x01, MGF1-SHA-256 full-domain hash, output
``SHA-256(0x01 ‖ 0x02 ‖ pi)``), on a 2048-bit or larger key with exponent 65537. Its uniqueness is RFC 9381's
*trusted* uniqueness: it holds if the hub's RSA key was generated honestly (an RSA modulus built so that 65537
divides φ(n) would let the hub make two proofs for one number). Generating the key in a witnessed ceremony, or
moving to ECVRF-EDWARDS25519 (full uniqueness; no Python library for it here), is left: docs/accountable-hub.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ledger.errors import Code, InputError, IntegrityError
from ledger.log.pseudonym import valid_individual_number

__all__ = [
    "PersonKeyProver",
    "check_person_key",
    "check_vrf_key",
    "held_key",
    "key_from_output",
    "person_key_check",
    "verify_person_key",
    "vrf_public_from_hex",
    "vrf_public_hex",
]

_SUITE = b"\x01"  # RSA-FDH-VRF-SHA256
_ALPHA = b"flagledger/person-key/1\x00"
_HELD = b"flagledger/person-key/held/1\x00"
_CHECK = b"flagledger/linkage/person-key-check/1\x00"  # unlike every code's label (flagledger/linkage/*-code/1)
_MIN_BITS = 2048
_E = 65537


def _alpha(number: str) -> bytes:
    number = number.strip().replace("-", "").replace(" ", "")
    if not valid_individual_number(number):
        raise InputError("not a valid 12-digit individual number", field="number")
    return _ALPHA + number.encode()


def _mgf1(seed: bytes, length: int) -> bytes:
    out = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range((length + 31) // 32))
    return out[:length]


def _encoded(n: int, k: int, alpha: bytes) -> int:
    salt = k.to_bytes(4, "big") + n.to_bytes(k, "big")
    return int.from_bytes(_mgf1(_SUITE + b"\x01" + salt + alpha, k - 1), "big")


def key_from_output(beta: bytes) -> bytes:
    """The map key of the VRF output ``beta`` (domain-separated from every other hash of the map)."""
    return hashlib.sha256(b"flagledger/flag-map/person-vrf/1\x00" + beta).digest()


def _output(pi: bytes) -> bytes:
    return hashlib.sha256(_SUITE + b"\x02" + pi).digest()


class PersonKeyProver:
    """The hub's side: its RSA VRF key (in the hub's key store; an HSM's RSA signing without padding fits)."""

    def __init__(self, private_key: RSAPrivateKey) -> None:
        if private_key.key_size < _MIN_BITS or private_key.public_key().public_numbers().e != _E:
            raise InputError(f"the person-key VRF needs RSA of {_MIN_BITS}+ bits, e = {_E}", code=Code.CONFIGURATION)
        self._numbers = private_key.private_numbers()
        self.public_key = private_key.public_key()
        self._n = self.public_key.public_numbers().n
        self._k = (self._n.bit_length() + 7) // 8

    def prove(self, number: str) -> bytes:
        """``pi`` for the person with ``number``: what the hub returns with its answer to a registration."""
        m = _encoded(self._n, self._k, _alpha(number))
        p, q, nums = self._numbers.p, self._numbers.q, self._numbers
        s1, s2 = pow(m, nums.dmp1, p), pow(m, nums.dmq1, q)  # RSASP1 by the Chinese remainder theorem
        s = s2 + (nums.iqmp * (s1 - s2) % p) * q
        return s.to_bytes(self._k, "big")

    def key(self, number: str) -> bytes:
        """The person's map key (the hub computes it with the proof, at registration, and keeps it)."""
        return key_from_output(_output(self.prove(number)))


def held_key(agency: str, person_key: bytes) -> bytes:
    """What an agency keeps of a person's map key: ``SHA-256(label ‖ agency ‖ 0x00 ‖ key)``, never the key.

    The map key is one value for the person at every agency (it must be: the holder and the provider check one
    leaf), so kept as it is it would be a national join key — two colluding insiders at two agencies could join
    their whole data on it. The held value differs per agency, and from it neither the key nor another
    agency's held value follows. A hub message naming a key (a routing decision, a holding proof) is checked by
    hashing the key it names the same way (docs/linkage.md, key hygiene)."""
    if len(person_key) != 32:
        raise IntegrityError("a map key is 32 bytes", code=Code.BAD_PROOF)
    return hashlib.sha256(_HELD + agency.encode() + b"\x00" + person_key).digest()


def _check_of(mac: Callable[[bytes], bytes], agency: str, encoded: int, k: int) -> bytes:
    return mac(_CHECK + agency.encode() + b"\x00" + encoded.to_bytes(k, "big"))


def _vrf_numbers(public_key: RSAPublicKey) -> tuple[int, int]:
    nums = public_key.public_numbers()
    if public_key.key_size < _MIN_BITS or nums.e != _E:
        raise InputError(f"the person-key VRF needs RSA of {_MIN_BITS}+ bits, e = {_E}", code=Code.CONFIGURATION)
    return nums.n, (nums.n.bit_length() + 7) // 8


def person_key_check(public_key: RSAPublicKey, mac: Callable[[bytes], bytes], agency: str, number: str) -> bytes:
    """What an agency node keeps, when a number is typed, to check the hub's VRF proof later without the number:
    ``HMAC(agency's code secret, label ‖ agency ‖ 0x00 ‖ the VRF's full-domain hash of the number)``.

    The node keeps no number (docs/linkage.md, key hygiene), and the hub's answer may come after a restart;
    RSA-FDH-VRF's proof ``pi`` is valid exactly when ``pi^e mod n`` is the full-domain hash of the number, so
    keeping a keyed hash of that value lets the node check ``pi`` later (:func:`check_person_key`). Keyed under
    the agency's own code secret, it tests a guessed number no better than the agency's code for the person,
    which sits beside it under the same secret; unkeyed, it would let a copy of the database test any guess."""
    n, k = _vrf_numbers(public_key)
    return _check_of(mac, agency, _encoded(n, k, _alpha(number)), k)


def check_person_key(
    public_key: RSAPublicKey, mac: Callable[[bytes], bytes], agency: str, kept: bytes, pi: bytes
) -> bytes:
    """The map key the hub's proof ``pi`` gives, once it checks against ``kept`` (:func:`person_key_check` of
    the number this agency registered); ``bad_person_key`` if the proof is malformed or for another number,
    another key pair, or bent — the map key is then not to be relied on."""
    n, k = _vrf_numbers(public_key)
    if not isinstance(pi, bytes) or len(pi) != k or (s := int.from_bytes(pi, "big")) >= n:
        raise IntegrityError("the hub's person-key proof is malformed", code=Code.BAD_PERSON_KEY)
    if not hmac.compare_digest(_check_of(mac, agency, pow(s, _E, n), k), kept):
        raise IntegrityError("the hub's person-key proof is not for the number registered", code=Code.BAD_PERSON_KEY)
    return key_from_output(_output(pi))


def verify_person_key(public_key: RSAPublicKey, number: str, pi: bytes) -> bytes:
    """The agency's check of the hub's answer to its registration: the map key for ``number``, or
    ``bad_proof`` if ``pi`` is not the hub's VRF proof for it (``configuration`` for a key that does not fit)."""
    n, k = _vrf_numbers(public_key)
    alpha = _alpha(number)
    if not isinstance(pi, bytes) or len(pi) != k or (s := int.from_bytes(pi, "big")) >= n:
        raise IntegrityError("the hub's person-key proof is malformed", code=Code.BAD_PROOF)
    if pow(s, _E, n) != _encoded(n, k, alpha):
        raise IntegrityError("the hub's person-key proof is not for this number", code=Code.BAD_PROOF)
    return key_from_output(_output(pi))


def check_vrf_key(public_key: RSAPublicKey) -> RSAPublicKey:
    """``public_key`` if it fits the VRF (RSA of 2048+ bits, e = 65537); ``configuration`` otherwise."""
    if public_key.key_size < _MIN_BITS or public_key.public_numbers().e != _E:
        raise InputError(f"the person-key VRF needs RSA of {_MIN_BITS}+ bits, e = {_E}", code=Code.CONFIGURATION)
    return public_key


def vrf_public_hex(public_key: RSAPublicKey) -> str:
    """The hub's VRF public key as published in its directory entry: DER SubjectPublicKeyInfo, hex."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der.hex()


def vrf_public_from_hex(text: str) -> RSAPublicKey:
    """A published VRF public key read back and checked; ``malformed`` if it is not one."""
    try:
        key = serialization.load_der_public_key(bytes.fromhex(text))
    except (ValueError, TypeError):
        raise InputError("the hub's VRF key is not a DER public key in hex", code=Code.MALFORMED) from None
    if not isinstance(key, RSAPublicKey):
        raise InputError("the hub's VRF key is not an RSA key", code=Code.MALFORMED)
    return check_vrf_key(key)
