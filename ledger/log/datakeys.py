"""Per-subject data keys (issue 22): one AES-256 key per person, wrapped by the node's key-encryption key.

A person's personal events (an intake case and its notes, a read of their protected details, an erasure request
about them: :mod:`ledger.log.subjects`) are encrypted under their data key before they are signed
(:mod:`ledger.log.subject_payload`), so the log keeps only ciphertext and verifies without the key. Destroying
the key (``flagledger erase``) makes that ciphertext unreadable for good, while every signature, chain link and
tree head still checks.

The keys live in their own small SQLite file (``datakeys.sqlite`` in the data directory), whatever database holds
the log: a destroyed key must leave no copy behind, and this file runs with ``secure_delete`` and a rollback
journal (no WAL keeps old pages), so a deleted row is overwritten on disk within its transaction. A PostgreSQL
log would keep a deleted key in dead tuples and WAL segments the node cannot scrub.

A key is named by ``ref``, 16 random bytes that say nothing about the person. The person's pseudonym is kept
beside their refs only until erasure; afterwards only the refs remain, with when and by which approval they
were destroyed (what ``audit verify`` reports for each erased event).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import Code, ConfigurationError, IntegrityError
from ledger.faultpoint import faultpoint
from ledger.files import private_file

__all__ = ["DATA_KEYS_FILE", "AesKek", "DataKeys", "Erasure", "KeyWrapper"]

DATA_KEYS_FILE = "datakeys.sqlite"
REF_BYTES = 16

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS subject_keys (ref BLOB PRIMARY KEY, subject TEXT NOT NULL, wrapped BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS subject_keys_subject ON subject_keys (subject)",
    "CREATE TABLE IF NOT EXISTS stream_keys (stream TEXT PRIMARY KEY, ref BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erased_keys (ref BLOB PRIMARY KEY, erased_at TEXT NOT NULL, request TEXT NOT NULL, "
    "approved_by TEXT NOT NULL)",
    # wire keys (ledger.linkage.wire_keys): one per person and recipient, never the data key; erased with it
    "CREATE TABLE IF NOT EXISTS wire_keys (ref BLOB PRIMARY KEY, subject TEXT NOT NULL, recipient TEXT NOT NULL, "
    "wrapped BLOB NOT NULL, delivered INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS erased_wire_keys (ref BLOB PRIMARY KEY, recipient TEXT NOT NULL)",
)


_FIND = "SELECT ref, wrapped FROM subject_keys WHERE subject = ? ORDER BY rowid DESC LIMIT 1"


class KeyWrapper(Protocol):
    """The node's key-encryption key: a file secret today (:class:`AesKek`), a key that never leaves a hardware
    token with a PKCS#11 key store (the ``hsm`` backend wraps inside the device)."""

    def wrap(self, key: bytes, ref: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, ref: bytes) -> bytes: ...


class AesKek:
    """AES-GCM key wrapping under a 256-bit secret, the key's ref bound as associated data (a wrapped key moved to
    another ref does not unwrap). ``kek`` may be a callable: the secret is then read (or made) on first use, so a
    node that never keeps a person's data key never makes a key-encryption key either."""

    def __init__(self, kek: bytes | Callable[[], bytes]) -> None:
        self._source = kek
        self._aead: AESGCM | None = None
        self._secret = b""

    @property
    def secret(self) -> bytes:
        """(handed to `audit verify`'s worker processes, which read the same keys)"""
        if not self._secret:
            secret = self._source() if callable(self._source) else self._source
            if len(secret) != 32:
                raise ConfigurationError("the data key-encryption key must be 32 bytes")
            self._secret = secret
        return self._secret

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self.secret)
        return self._aead

    def wrap(self, key: bytes, ref: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._cipher().encrypt(nonce, key, ref)

    def unwrap(self, wrapped: bytes, ref: bytes) -> bytes:
        try:
            return self._cipher().decrypt(wrapped[:12], wrapped[12:], ref)
        except InvalidTag as exc:
            raise IntegrityError(
                "a data key does not unwrap under this node's key-encryption key", code=Code.UNDECRYPTABLE
            ) from exc


@dataclass(frozen=True)
class Erasure:
    """When a data key was destroyed and by which approved request (its stream id) and approver."""

    ref: str
    erased_at: str
    request: str
    approved_by: str


class DataKeys:
    """The node's per-subject data keys (thread-safe; one connection, serialised)."""

    def __init__(self, path: Path, kek: KeyWrapper) -> None:
        self.path = path
        self.wrapper = kek
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None  # opened (and the file made) when first needed
        self._cache: dict[bytes, bytes] = {}
        self._known: dict[str, bytes] = {}  # subject → the ref of its current key (same lifetime as the cache)
        self._version = -1  # the file's data_version the cache was filled at (another process may erase)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            private_file(self.path)  # 0600 before SQLite writes a byte (its journal takes the file's mode)
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA secure_delete = ON")
            db.execute("PRAGMA journal_mode = DELETE")
            for stmt in _SCHEMA:
                db.execute(stmt)
            self._conn = db
        return self._conn

    def _held(self) -> bool:
        """Whether this node keeps any data keys (reading never makes the file)."""
        return self._conn is not None or self.path.exists()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._cache.clear()
            self._known.clear()
            self._version = -1

    # -- writing ------------------------------------------------------------------------------------
    def _fresh(self, db: sqlite3.Connection) -> None:
        """(under the lock) Forget what is cached once another process changed the file (it may have erased)."""
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._cache.clear()
            self._known.clear()
            self._version = version

    def for_subjects(
        self, subjects: Iterable[str], bind: Mapping[str, str] | None = None
    ) -> dict[str, tuple[bytes, bytes]]:
        """(ref, key) of each person's current data key, those who have none made in one transaction; ``bind``
        (stream → person) binds each stream to its person's key in that same transaction.

        Once a batch (the mapper before signing, the projector before a page): a new key's commit is a synced
        write (rollback journal, ``synchronous`` FULL), and even a look-up of the file's version takes its lock —
        one of each per event cost the append path ~15× (issue 23, docs/performance.md). The commit returns
        before any event sealed under these keys is written, so no event reaches the log before its key is
        durable; a batch refused or lost after it leaves keys that seal nothing (a person's are all destroyed
        on erasure, :meth:`refs_of`)."""
        with self._lock:
            db = self._db
            self._fresh(db)
            names = set(subjects)
            binds = dict(bind or {})
            names.update(binds.values())
            for subject in names:
                if subject not in self._known and (row := db.execute(_FIND, (subject,)).fetchone()) is not None:
                    self._known[subject] = bytes(row[0])  # kept before (another process, or before a restart)
            found = {s: self._current(db, s) for s in names}
            if not binds and all(v is not None for v in found.values()):
                return cast(dict[str, tuple[bytes, bytes]], found)  # (the common case: nothing to write)
            cur = db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                # under the file's write lock: what is cached is checked against the file once more (another
                # process may have erased someone since), then no other process can change it until COMMIT
                self._fresh(db)
                made = self._make_in(cur, sorted(s for s in names if s not in self._known))
                out = {}
                for subject in names:
                    got = made.get(subject) or self._current(db, subject)
                    if got is None:  # destroyed by another process a moment ago: the person's next key
                        self._known.pop(subject, None)
                        got = self._make_in(cur, [subject])[subject]
                        made[subject] = got
                    out[subject] = got
                cur.executemany(
                    "INSERT OR IGNORE INTO stream_keys (stream, ref) VALUES (?, ?)",
                    [(stream, out[subject][0]) for stream, subject in binds.items()],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            faultpoint("datakeys.committed")  # the keys durable, no event under them written yet (tests/faults)
            for subject, (ref, key) in made.items():
                self._known[subject], self._cache[ref] = ref, key
            return out

    def _current(self, db: sqlite3.Connection, subject: str) -> tuple[bytes, bytes] | None:
        """(under the lock) The known current key of ``subject``; None if unknown or gone from the file."""
        ref = self._known.get(subject)
        if ref is None:
            return None
        key = self._cache.get(ref)
        if key is None:
            row = db.execute("SELECT wrapped FROM subject_keys WHERE ref = ?", (ref,)).fetchone()
            if row is None:
                return None
            key = self._cache[ref] = self.wrapper.unwrap(bytes(row[0]), ref)
        return ref, key

    def _make_in(self, cur: sqlite3.Cursor, wanted: list[str]) -> dict[str, tuple[bytes, bytes]]:
        """(under the lock, inside the caller's write transaction) Know the current key of each of ``wanted``;
        returns the keys made for those who had none (cached by the caller once committed)."""
        made: dict[str, tuple[bytes, bytes]] = {}
        for subject in wanted:
            row = cur.execute(_FIND, (subject,)).fetchone()
            if row is not None:
                self._known[subject] = bytes(row[0])
                continue
            ref, key = os.urandom(REF_BYTES), AESGCM.generate_key(256)
            cur.execute(
                "INSERT INTO subject_keys (ref, subject, wrapped) VALUES (?, ?, ?)",
                (ref, subject, self.wrapper.wrap(key, ref)),
            )
            made[subject] = (ref, key)
        return made

    def for_subject(self, subject: str) -> tuple[bytes, bytes]:
        """(ref, key) of the person's current data key, made the first time one is needed (under the file's write
        lock: two processes of the node that meet a new person at once make one key, so both seal views alike)."""
        return self.for_subjects((subject,))[subject]

    def for_stream(self, stream: str) -> tuple[bytes, bytes] | None:
        if not self._held():
            return None
        with self._lock:
            row = self._db.execute("SELECT ref FROM stream_keys WHERE stream = ?", (stream,)).fetchone()
        if row is None:
            return None
        ref = bytes(row[0])
        key = self.key(ref)
        if key is None:
            raise IntegrityError(
                "this stream's person was erased: nothing more is written about them", code=Code.ERASED
            )
        return ref, key

    # -- reading ------------------------------------------------------------------------------------
    def key(self, ref: bytes) -> bytes | None:
        """The data key ``ref`` names (None: destroyed, or never held on this node)."""
        if not self._held():
            return None
        with self._lock:
            db = self._db
            # another process of this node (the `erase approve` command, while an API process runs) may have
            # destroyed keys this one holds in memory: its commit changes the file's data_version
            self._fresh(db)
            cached = self._cache.get(ref)
            if cached is not None:
                return cached
            row = db.execute("SELECT wrapped FROM subject_keys WHERE ref = ?", (ref,)).fetchone()
            if row is None:
                return None
            key = self.wrapper.unwrap(bytes(row[0]), ref)
            self._cache[ref] = key
            return key

    def refs_of(self, subject: str) -> list[str]:
        """The refs of the person's data keys and wire keys (an erasure destroys both)."""
        if not self._held():
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT ref FROM subject_keys WHERE subject = ? UNION SELECT ref FROM wire_keys WHERE subject = ?",
                (subject, subject),
            ).fetchall()
        return sorted(bytes(r[0]).hex() for r in rows)

    # -- wire keys (ledger.linkage.wire_keys) -------------------------------------------------------
    def wire_key(self, subject: str, recipient: str) -> tuple[bytes, bytes, bool]:
        """(ref, key, delivered) of the person's wire key for ``recipient``, made the first time."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                find = "SELECT ref, wrapped, delivered FROM wire_keys WHERE subject = ? AND recipient = ?"
                row = cur.execute(find, (subject, recipient)).fetchone()
                if row is None:
                    ref, key = os.urandom(REF_BYTES), AESGCM.generate_key(256)
                    cur.execute(
                        "INSERT INTO wire_keys (ref, subject, recipient, wrapped) VALUES (?, ?, ?, ?)",
                        (ref, subject, recipient, self.wrapper.wrap(key, ref)),
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        if row is None:
            return ref, key, False
        ref = bytes(row[0])
        return ref, self.wrapper.unwrap(bytes(row[1]), ref), bool(row[2])

    def wire_key_of(self, ref: bytes, recipient: str) -> bytes | None:
        """The wire key ``ref`` names if it is ``recipient``'s and still held (None: destroyed — the person was
        erased — or never made here), to send again."""
        if not self._held():
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT wrapped FROM wire_keys WHERE ref = ? AND recipient = ?", (ref, recipient)
            ).fetchone()
        return None if row is None else self.wrapper.unwrap(bytes(row[0]), ref)

    def wire_delivered(self, ref: bytes) -> None:
        """The recipient was sent the key (``subject_key``): it is not sent again."""
        with self._lock:
            self._db.execute("UPDATE wire_keys SET delivered = 1 WHERE ref = ?", (ref,))

    def wire_refs(self, refs: list[str], recipient: str) -> list[str]:
        """Those of ``refs`` that are, or were until an erasure, ``recipient``'s wire keys (its ``wire_erasure``)."""
        q = "SELECT ref FROM wire_keys WHERE recipient = ? UNION SELECT ref FROM erased_wire_keys WHERE recipient = ?"
        with self._lock:
            wired = {bytes(r[0]).hex() for r in self._db.execute(q, (recipient, recipient)).fetchall()}
        return sorted(r for r in refs if r in wired)

    def erasure(self, ref: bytes) -> Erasure | None:
        if not self._held():
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT erased_at, request, approved_by FROM erased_keys WHERE ref = ?", (ref,)
            ).fetchone()
        return None if row is None else Erasure(ref.hex(), row[0], row[1], row[2])

    def erasures(self) -> list[Erasure]:
        if not self._held():
            return []
        with self._lock:
            rows = self._db.execute("SELECT ref, erased_at, request, approved_by FROM erased_keys").fetchall()
        return sorted((Erasure(bytes(r[0]).hex(), r[1], r[2], r[3]) for r in rows), key=lambda e: (e.erased_at, e.ref))

    # -- erasure ------------------------------------------------------------------------------------
    def held(self, refs: list[str]) -> list[str]:
        """Which of ``refs`` this node still holds (a restored backup may bring back keys erased since)."""
        with self._lock:
            wired = {bytes(r[0]).hex() for r in self._db.execute("SELECT ref FROM wire_keys").fetchall()}
        return [r for r in refs if r in wired or self.key(bytes.fromhex(r)) is not None]

    def destroy(self, refs: list[str], erased_at: str, request: str, approved_by: str) -> int:
        """Destroy these keys (idempotent: a ref already gone is recorded as erased all the same) and forget
        which person and streams they belonged to; the page is overwritten (``secure_delete``) on commit."""
        raw = [bytes.fromhex(r) for r in refs]
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                gone = 0
                for ref in raw:
                    gone += cur.execute("DELETE FROM subject_keys WHERE ref = ?", (ref,)).rowcount
                    cur.execute("DELETE FROM stream_keys WHERE ref = ?", (ref,))
                    wired = cur.execute("SELECT recipient FROM wire_keys WHERE ref = ?", (ref,)).fetchone()
                    if wired is not None:  # which recipient's copy to destroy too (DataKeys.wire_erased)
                        cur.execute("INSERT OR IGNORE INTO erased_wire_keys VALUES (?, ?)", (ref, wired[0]))
                        gone += cur.execute("DELETE FROM wire_keys WHERE ref = ?", (ref,)).rowcount
                    cur.execute(
                        "INSERT OR IGNORE INTO erased_keys (ref, erased_at, request, approved_by) VALUES (?, ?, ?, ?)",
                        (ref, erased_at, request, approved_by),
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            for ref in raw:
                self._cache.pop(ref, None)
            self._known = {s: r for s, r in self._known.items() if r not in raw}
            # the freed pages hold nothing (secure_delete); VACUUM also drops them from the file
            self._db.execute("VACUUM")
        return gone
