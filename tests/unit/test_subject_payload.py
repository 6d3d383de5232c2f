"""A person's payload under their data key (issue 22): the signed digest is salted, the key bound to its event.

Threats: an insider holding the log after an erasure who guesses a payload (a typical intake note) cannot confirm
it against the signed digest; one who moves a ciphertext to another event cannot make it open there.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from ledger.errors import Code, IntegrityError
from ledger.log.subject_payload import ErasedPayload, open_payload, ref_of, seal_payload

PLAIN = b'{"notes":"she fled to the coast","victim":"p0123456789abcdef0123456789abcdef"}'


def test_the_digest_of_a_sealed_payload_confirms_no_guess() -> None:
    """Insider guessing a payload after erasure: neither its digest nor the same payload sealed again matches."""
    ref, key = os.urandom(16), os.urandom(32)
    one = seal_payload(ref, key, PLAIN, "s", 1)
    two = seal_payload(ref, key, PLAIN, "s", 1)
    assert hashlib.sha256(one).hexdigest() != hashlib.sha256(two).hexdigest()  # salted by a fresh nonce
    assert hashlib.sha256(PLAIN).digest() not in one and PLAIN not in one
    assert ref_of(one) == ref
    assert open_payload(one, key, "s", 1) == PLAIN
    with pytest.raises(ErasedPayload) as gone:
        open_payload(one, None, "s", 1)
    assert gone.value.code == Code.ERASED and gone.value.ref == ref


def test_a_sealed_payload_opens_only_in_its_own_event() -> None:
    """Insider moving one person's ciphertext to another event (or stream): it does not open there."""
    ref, key = os.urandom(16), os.urandom(32)
    blob = seal_payload(ref, key, PLAIN, "s", 1)
    for stream, version in (("s", 2), ("t", 1)):
        with pytest.raises(IntegrityError) as bad:
            open_payload(blob, key, stream, version)
        assert bad.value.code == Code.MALFORMED
    with pytest.raises(IntegrityError):
        ref_of(b"DK1\x00short")
