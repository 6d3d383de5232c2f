"""The per-subject data key file (issue 22): a destroyed key is gone for every process of the node and from the
file's bytes; a wrapped key opens only under this node's key-encryption key and its own ref.

Threats: an insider with the data directory after an erasure (the file holds no trace of the key); an API process
still running when an administrator erases (it must not go on reading the person's events from memory); an
insider swapping wrapped keys between refs.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ledger.errors import Code, IntegrityError
from ledger.log.datakeys import AesKek, DataKeys


def test_a_key_destroyed_by_one_process_is_gone_for_another_and_from_the_file(tmp_path: Path) -> None:
    """API process running during `erase approve`; insider reading the file afterwards."""
    kek = AesKek(os.urandom(32))
    path = tmp_path / "datakeys.sqlite"
    api, cli = DataKeys(path, kek), DataKeys(path, kek)
    try:
        ref, key = api.for_subject("p" + "1" * 32)
        other, _ = api.for_subject("p" + "2" * 32)
        assert api.key(ref) == key and cli.key(ref) == key
        assert cli.refs_of("p" + "1" * 32) == [ref.hex()]
        with sqlite3.connect(path) as db:
            (wrapped,) = db.execute("SELECT wrapped FROM subject_keys WHERE ref = ?", (ref,)).fetchone()
        assert bytes(wrapped) in path.read_bytes()
        assert cli.destroy([ref.hex()], "2026-12-07T00:00:00+00:00", "req", "admin2") == 1
        assert api.key(ref) is None, "the other process's memory let go"
        assert api.key(other) is not None
        assert cli.erasure(ref) is not None and cli.erasure(ref).approved_by == "admin2"  # type: ignore[union-attr]
        raw = path.read_bytes()  # overwritten on disk, not just unlinked from the table
        assert bytes(wrapped) not in raw and ("p" + "1" * 32).encode() not in raw
        assert ("p" + "2" * 32).encode() in raw
        new_ref, _ = api.for_subject("p" + "1" * 32)
        assert new_ref != ref  # a later event about them gets a new key, not the erased one
    finally:
        api.close()
        cli.close()
    assert not any(p.name.endswith(("-journal", "-wal")) for p in tmp_path.iterdir())


def test_a_wrapped_key_opens_only_under_its_kek_and_its_ref() -> None:
    """Insider moving a wrapped key to another ref, or trying another node's key-encryption key."""
    kek = AesKek(os.urandom(32))
    wrapped = kek.wrap(b"k" * 32, b"r" * 16)
    assert kek.unwrap(wrapped, b"r" * 16) == b"k" * 32
    for other, ref in ((kek, b"s" * 16), (AesKek(os.urandom(32)), b"r" * 16)):
        with pytest.raises(IntegrityError) as bad:
            other.unwrap(wrapped, ref)
        assert bad.value.code == Code.UNDECRYPTABLE
