"""The views' sealed cells (issue 22, ledger/log/view_cipher.py).

Threats: an insider with the views' files — a cell names nothing in plain text and, once its person's data key is
destroyed, opens with no key left; one who moves a cell to another column or person's row cannot make it say
something there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.errors import Code, IntegrityError
from ledger.log.datakeys import AesKek, DataKeys
from ledger.log.view_cipher import SEALED_PREFIX, ViewCipher

COLUMN, OTHER = "timeline_events.detail", "queue_held_requests.querier"


@pytest.fixture
def keys(tmp_path: Path) -> DataKeys:
    dk = DataKeys(tmp_path / "datakeys.sqlite", AesKek(os.urandom(32)))
    yield dk  # type: ignore[misc]
    dk.close()


def test_a_cell_is_sealed_deterministically_per_person_and_column(keys: DataKeys) -> None:
    """Insider with the views: no plain text; a rebuild seals alike; persons and columns do not compare."""
    cipher = ViewCipher(keys)
    value = '{"notes":"she moved near the station"}'
    cell = cipher.seal("p-one", COLUMN, value)
    assert cell.startswith(SEALED_PREFIX) and "station" not in cell
    assert cipher.seal("p-one", COLUMN, value) == cell  # a rebuild equals the live views
    assert ViewCipher(keys).seal("p-one", COLUMN, value) == cell  # in another process, with the same key
    assert cipher.seal("p-two", COLUMN, value) != cell
    assert cipher.seal("p-one", OTHER, value) != cell
    assert cipher.open(COLUMN, cell) == value
    with pytest.raises(IntegrityError) as moved:
        cipher.open(OTHER, cell)
    assert moved.value.code == Code.MALFORMED


def test_a_destroyed_key_leaves_its_cells_unreadable_and_others_readable(keys: DataKeys) -> None:
    """Insider after an erasure: the person's cells open with no key left (also in a cipher that had them
    open before), another person's still do; a personal event read before the erasure is not sealed after it."""
    cipher = ViewCipher(keys)
    gone, kept = cipher.seal("p-gone", COLUMN, "A"), cipher.seal("p-kept", COLUMN, "B")
    assert cipher.open(COLUMN, gone) == "A"
    refs = keys.refs_of("p-gone")
    keys.destroy(refs, "2026-12-07T00:00:00+00:00", "request", "admin2")
    assert cipher.open(COLUMN, gone) is None
    assert ViewCipher(keys).open(COLUMN, gone) is None
    assert cipher.open(COLUMN, kept) == "B"
    assert cipher.seal_under(bytes.fromhex(refs[0]), COLUMN, "A") is None
    assert cipher.seal("p-gone", COLUMN, "A") != gone  # a later event about them: a new key


def test_unsealed_and_malformed_cells(keys: DataKeys) -> None:
    """Views made before the sealing read as they are until rebuilt; a damaged cell is an integrity error."""
    cipher = ViewCipher(keys)
    assert cipher.open(COLUMN, "131016") == "131016" and cipher.open(COLUMN, None) is None
    with pytest.raises(IntegrityError):
        cipher.open(COLUMN, SEALED_PREFIX + "!!!")
    cell = cipher.seal("p", COLUMN, "x")
    with pytest.raises(IntegrityError):
        cipher.open(COLUMN, cell[:-3] + ("AAA" if cell[-3:] != "AAA" else "BBB"))
    assert ViewCipher(None).seal("p", COLUMN, "x") == "x"  # a ledger with no data keys keeps them plain


def test_a_pages_keys_are_the_persons_own_and_a_key_another_process_destroyed_is_not_used(
    keys: DataKeys, tmp_path: Path
) -> None:
    """Insider after an erasure done by another process of the node (the CLI while the node runs): the
    projector's next page does not seal with the destroyed key, and its keys are the ones single look-ups give."""
    page = keys.for_subjects(["p-a", "p-b"])
    assert page["p-a"] == keys.for_subject("p-a") and page["p-a"][0] != page["p-b"][0]
    other = DataKeys(keys.path, keys.wrapper)  # the other process, on the same file
    try:
        destroyed = other.refs_of("p-a")
        other.destroy(destroyed, "2026-12-07T00:00:00+00:00", "request", "admin2")
    finally:
        other.close()
    again = keys.for_subjects(["p-a", "p-b"])
    assert again["p-a"][0].hex() not in destroyed and again["p-b"] == page["p-b"]
    assert keys.for_subject("p-a") == again["p-a"]
