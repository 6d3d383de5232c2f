"""Keyed pseudonyms: the raw individual number (個人番号) is accepted at the edge and never stored."""

from __future__ import annotations

import re

from ledger.errors import InputError
from ledger.log.keyed_hash import KeyedHash

__all__ = ["Pseudonymizer", "check_digit", "is_pseudonym", "valid_individual_number"]

_DIGITS = re.compile(r"^[0-9]{12}$")
_PSEUDONYM = re.compile(r"^p[0-9a-f]{32}$")


def check_digit(first11: str) -> int:
    """The 12th digit of an individual number (総務省令 第5条)."""
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def valid_individual_number(number: str) -> bool:
    return bool(_DIGITS.match(number)) and check_digit(number[:11]) == int(number[11])


def is_pseudonym(value: str) -> bool:
    return bool(_PSEUDONYM.match(value))


class Pseudonymizer:
    """HMAC-SHA256 of the number under the deployment-wide secret, so every agency derives the same name.
    ``secret``: the bytes, or a :class:`KeyedHash` that computes the HMAC where the secret lives (an HSM)."""

    def __init__(self, secret: bytes | KeyedHash) -> None:
        if isinstance(secret, bytes) and len(secret) < 32:
            raise InputError("the pseudonym secret must be at least 32 bytes")
        self._mac = KeyedHash.of(secret)

    def __call__(self, number: str) -> str:
        number = number.strip().replace("-", "").replace(" ", "")
        if not valid_individual_number(number):
            raise InputError("not a valid 12-digit individual number (check digit mismatch or wrong length)")
        return "p" + self._mac(number.encode()).hex()[:32]

    def subject(self, number_or_pseudonym: str) -> str:
        """Accept either a raw number (pseudonymised here) or an existing pseudonym."""
        if is_pseudonym(number_or_pseudonym):
            return number_or_pseudonym
        return self(number_or_pseudonym)
