"""Map keys bound to the number by the hub's VRF (ledger/linkage/person_keys.py).

Threat: a malicious hub that gives the holder and the provider two different map keys for one person, so the
holder checks a leaf with its flag while the provider is shown an unflagged one. Each agency checks the hub's
VRF proof against the number it registered, so both derive the one key; any other key is refused at
registration. Also an insider with the map's keys, or the broker operator: a key lets no one test a number.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ledger.errors import Code, InputError, IntegrityError
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.person_keys import PersonKeyProver, check_person_key, person_key_check, verify_person_key
from ledger.log.keyed_hash import KeyedHash
from ledger.log.pseudonym import check_digit


def number(first11: str) -> str:
    return first11 + str(check_digit(first11))


X_NUMBER, Y_NUMBER = number("12345678901"), number("98765432109")


@pytest.fixture(scope="module")
def hub() -> PersonKeyProver:
    return PersonKeyProver(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_holder_and_provider_derive_one_key_for_one_number(hub: PersonKeyProver) -> None:
    pi = hub.prove(X_NUMBER)
    at_holder = verify_person_key(hub.public_key, X_NUMBER, pi)
    at_provider = verify_person_key(hub.public_key, X_NUMBER.replace("1234", "1234 ", 1), hub.prove(X_NUMBER))
    assert at_holder == at_provider == hub.key(X_NUMBER)
    assert hub.key(Y_NUMBER) != at_holder
    # the map the hub keeps under those keys is the one both check
    m = HubFlagMap(key_of={"x": hub.key(X_NUMBER)}.__getitem__)
    m.apply(FlagChange(1, "x", "131016", "NO_AUTO_RESPONSE", "set"))
    assert m.map.prove(at_provider).value is not None


def test_a_hub_cannot_hand_a_provider_another_key(hub: PersonKeyProver) -> None:
    other = hub.prove(Y_NUMBER)  # another person's genuine proof
    with pytest.raises(IntegrityError) as caught:
        verify_person_key(hub.public_key, X_NUMBER, other)
    assert caught.value.code == Code.BAD_PROOF
    pi = bytearray(hub.prove(X_NUMBER))
    pi[-1] ^= 1
    with pytest.raises(IntegrityError):
        verify_person_key(hub.public_key, X_NUMBER, bytes(pi))
    with pytest.raises(IntegrityError):  # out of range, short
        verify_person_key(hub.public_key, X_NUMBER, b"\xff" * 256)
    with pytest.raises(IntegrityError):
        verify_person_key(hub.public_key, X_NUMBER, b"\x01")
    forger = PersonKeyProver(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(IntegrityError):  # a proof under a key that is not the hub's published one
        verify_person_key(hub.public_key, X_NUMBER, forger.prove(X_NUMBER))


def test_the_key_tells_nothing_without_the_hubs_private_key(hub: PersonKeyProver) -> None:
    """The key depends on the hub's private key: another key pair gives another key for the same number, so
    whoever has the number and the public key alone cannot compute it (nor test a guess against a key)."""
    key = hub.key(X_NUMBER)
    assert X_NUMBER.encode() not in hub.prove(X_NUMBER)
    assert PersonKeyProver(rsa.generate_private_key(public_exponent=65537, key_size=2048)).key(X_NUMBER) != key


def test_weak_keys_and_bad_numbers_are_refused(hub: PersonKeyProver) -> None:
    with pytest.raises(InputError) as caught:
        PersonKeyProver(rsa.generate_private_key(public_exponent=3, key_size=2048))
    assert caught.value.code == Code.CONFIGURATION
    with pytest.raises(InputError):
        PersonKeyProver(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(InputError):
        hub.prove("123456789010")  # a wrong check digit


def test_a_node_checks_the_proof_against_the_keyed_check_it_kept_without_the_number(hub: PersonKeyProver) -> None:
    """Threat: a malicious or compromised hub answering an agency node (which keeps no number) with another
    number's proof, a bent one, or another key pair's; and an insider with a copy of the node's database, who
    must not be able to test a guessed number against the check without the agency's code secret."""
    secret, other_secret = KeyedHash.of_secret(b"s" * 32), KeyedHash.of_secret(b"t" * 32)
    kept = person_key_check(hub.public_key, secret, "131016", X_NUMBER)
    assert X_NUMBER.encode() not in kept and len(kept) == 32
    assert check_person_key(hub.public_key, secret, "131016", kept, hub.prove(X_NUMBER)) == hub.key(X_NUMBER)
    other_pair = PersonKeyProver(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pi = hub.prove(X_NUMBER)
    for bad in (hub.prove(Y_NUMBER), bytes([pi[0] ^ 1]) + pi[1:], other_pair.prove(X_NUMBER), pi[:-1], b""):
        with pytest.raises(IntegrityError) as caught:
            check_person_key(hub.public_key, secret, "131016", kept, bad)
        assert caught.value.code == Code.BAD_PERSON_KEY
    # keyed: another agency's, or another secret's, check of the same number is another value
    assert person_key_check(hub.public_key, secret, "131024", X_NUMBER) != kept
    assert person_key_check(hub.public_key, other_secret, "131016", X_NUMBER) != kept
    with pytest.raises(IntegrityError):
        check_person_key(hub.public_key, other_secret, "131016", kept, pi)
