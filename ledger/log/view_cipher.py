"""Personal columns of the views encrypted under the person's data key (issue 22, docs/erasure.md).

A sealed cell is text, so the same column works on SQLite and PostgreSQL (no SQLCipher, no pgcrypto):
``vk1.`` + base64url(16-byte data key ref | AES-256-SIV(view key, value, aad = the column's name)). The view key
is derived (HKDF-SHA256) from the person's data key in :mod:`ledger.log.datakeys`, so ``flagledger erase``, which
destroys that key, also makes every copy of the person's cells unreadable — the live tables, SQLite's free pages
and WAL, PostgreSQL's dead tuples, WAL segments and base backups of the view tables — before and besides the
rebuild that drops them.

Why deterministic (SIV): a rebuild must equal the live views byte for byte (``audit views`` and every
"projections equal a rebuild" check compare rows), and the same value under the same key and column always seals
to the same text. What that shows an observer without the key: that two cells of one person's column hold the
same value, nothing across persons (each has their own key) or columns (the column is associated data).

Lookup columns (the subject's pseudonym, an agency's own code in its work queue) stay as they are: pseudonyms are
keyed HMACs already, and the request path and the queues select by them.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.errors import Code, IntegrityError
from ledger.log.datakeys import REF_BYTES, DataKeys

__all__ = ["SEALED_PREFIX", "ViewCipher"]

SEALED_PREFIX = "vk1."
_INFO = b"flagledger view columns v1"
_NAMING = ("subject", "victim", "old", "new", "proxy")  # the fields that name a person (projections.timeline)


def _view_key(data_key: bytes) -> AESSIV:
    return AESSIV(HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_INFO).derive(data_key))


class ViewCipher:
    """Seals and opens the views' personal cells with this node's data keys (thread-safe).

    Without data keys (a ledger opened outside ``open_node``, as some unit tests do) cells stay plain; every
    node opened from a data directory has them."""

    def __init__(self, data_keys: DataKeys | None) -> None:
        self.data_keys = data_keys
        self._lock = threading.Lock()
        self._keys: dict[bytes, AESSIV] = {}  # ref → view key (a destroyed ref is looked up again, below)
        self._page: dict[str, tuple[bytes, bytes]] = {}  # subject → (ref, data key) of the projector's page

    def _cipher(self, ref: bytes, data_key: bytes) -> AESSIV:
        with self._lock:
            siv = self._keys.get(ref)
            if siv is None:
                siv = self._keys[ref] = _view_key(data_key)
            return siv

    def prepare(self, events: Iterable[Any]) -> None:
        """The keys of the persons ``events`` name, those who have none made in one transaction (the projector,
        before a page): otherwise each new person costs a synced commit in the middle of the page."""
        if self.data_keys is None:
            return
        names: set[str] = set()
        for event in events:
            fields = vars(event)
            for f in _NAMING:
                v = fields.get(f)
                if isinstance(v, str) and v:
                    names.add(v)
            many = fields.get("perpetrators")
            if many:
                names.update(str(p) for p in many)
        # this page's keys: sealing a cell then costs no look-up in the key file (a key another process destroys
        # during the page still seals the page's cells: unreadable, as that person's are meant to be)
        self._page = self.data_keys.for_subjects(names) if names else {}

    def seal(self, subject: str, column: str, value: str) -> str:
        """``value`` under ``subject``'s data key (made the first time one is needed)."""
        if self.data_keys is None:
            return value
        hit = self._page.get(subject)
        ref, key = hit if hit is not None else self.data_keys.for_subject(subject)
        return self._seal(ref, key, column, value)

    def seal_under(self, ref: bytes, column: str, value: str) -> str | None:
        """``value`` under the data key ``ref`` names (a personal event's own key); None when that key was
        destroyed since the event was read (another process erased the person): nothing of it is kept."""
        if self.data_keys is None:
            return value
        key = self.data_keys.key(ref)
        return None if key is None else self._seal(ref, key, column, value)

    def _seal(self, ref: bytes, key: bytes, column: str, value: str) -> str:
        box = self._cipher(ref, key).encrypt(value.encode(), [column.encode()])
        return SEALED_PREFIX + base64.urlsafe_b64encode(ref + box).decode().rstrip("=")

    def open(self, column: str, cell: str | None) -> str | None:
        """The cell's value; None when its key is destroyed (the person was erased) or the cell is empty. A cell
        that is not sealed (views made before issue 22's column encryption, before their rebuild) reads as is."""
        if cell is None or not cell.startswith(SEALED_PREFIX):
            return cell
        text = cell[len(SEALED_PREFIX) :]
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise IntegrityError(f"a sealed view cell of {column} is malformed", code=Code.MALFORMED) from exc
        if len(raw) < REF_BYTES + 16:  # a ref and SIV's 16-byte tag at least
            raise IntegrityError(f"a sealed view cell of {column} is malformed", code=Code.MALFORMED)
        ref, box = raw[:REF_BYTES], raw[REF_BYTES:]
        # the key is looked up every time: another process of this node may have destroyed it since
        key = self.data_keys.key(ref) if self.data_keys is not None else None
        if key is None:
            with self._lock:
                self._keys.pop(ref, None)
            return None
        try:
            return self._cipher(ref, key).decrypt(box, [column.encode()]).decode()
        except InvalidTag as exc:
            raise IntegrityError(f"a sealed view cell of {column} does not open", code=Code.MALFORMED) from exc
