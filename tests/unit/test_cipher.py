"""The reusing AES-GCM cipher reads and writes exactly the library's layout, and refuses what the library refuses."""

from __future__ import annotations

import pytest
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from ledger.log.cipher import ReusedAESCipher, reuse_key_schedule


def library_cipher() -> AESCipher:
    return AESCipher(Environment(env={"CIPHER_KEY": AESCipher.create_key(32)}))


def test_rows_written_by_either_cipher_are_read_by_the_other() -> None:
    lib = library_cipher()
    ours = reuse_key_schedule(lib)
    assert isinstance(ours, ReusedAESCipher)
    for plaintext in (b"", b"x", "不開示".encode() * 100):
        assert lib.decrypt(ours.encrypt(plaintext)) == plaintext
        assert ours.decrypt(lib.encrypt(plaintext)) == plaintext
    assert ours.encrypt(b"same") != ours.encrypt(b"same"), "a nonce was reused"


@pytest.mark.parametrize("damage", ["flip", "truncate", "short"])
def test_damaged_ciphertext_is_refused_like_the_library(damage: str) -> None:
    lib = library_cipher()
    ours = reuse_key_schedule(lib)
    assert ours is not None
    ct = bytearray(lib.encrypt(b"protected address"))
    if damage == "flip":
        ct[-1] ^= 1
    elif damage == "truncate":
        del ct[-3:]
    else:
        del ct[20:]
    with pytest.raises(ValueError):
        lib.decrypt(bytes(ct))
    with pytest.raises(ValueError):
        ours.decrypt(bytes(ct))


def test_other_ciphers_are_left_alone() -> None:
    assert reuse_key_schedule(None) is None
