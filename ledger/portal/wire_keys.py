"""The portal's own key file (issue 22, ``ledger.linkage.wire_keys``): the providers' wire keys it was sent, and
its delivery keys.

``wirekeys.sqlite`` beside the portal's database, whatever database that is: like an agency's
``datakeys.sqlite`` it runs with ``secure_delete`` and a rollback journal (no WAL), so a destroyed key is
overwritten on disk within its transaction — a PostgreSQL table would keep it in dead tuples and WAL segments.
Every key in it is wrapped by the portal's key-encryption key (a ``KeyWrapper``: a file secret, or a key inside
a PKCS#11 token).

* **Wire keys**, by ref, with the provider that delivered each: only that provider's ``wire_erasure`` destroys
  it. A destroyed key's ref stays in ``erased`` (with when): the portal's record of the erasure, and why a page
  that still names such a record drops it rather than refusing the page.
* **Delivery keys**: X25519 key pairs, the newest one's public half published (``Directory.delivery``); a
  provider seals each wire key to it. :meth:`PortalWireKeys.rotate` makes a new one; :meth:`retire` destroys
  the private halves of all but the newest few — once the key messages sealed to them were taken and the
  topic's retention window has passed, every retained key message opens with no key anyone holds;
  :meth:`retire_superseded` those replaced before a time (the portal's schedule: ``ledger.portal.rotation``).
  Each key's ``made`` is its serial (the agencies refuse an announcement of an older one), ``made_at`` when it
  was made (``""`` for a key made before this column) and ``announced`` whether its signed announcement was
  handed to the portal's outbox (``ledger.linkage.delivery_keys``).

Schema changes are made here when the file is opened (the key file has no migration chain: it is the portal's
own SQLite file): ``made_at`` and ``announced`` are added to ``delivery_keys`` when missing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ledger.files import private_file
from ledger.linkage.sealing import public_hex
from ledger.log.datakeys import KeyWrapper

__all__ = ["WIRE_KEYS_FILE", "PortalWireKeys"]

WIRE_KEYS_FILE = "wirekeys.sqlite"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS wire_keys (ref BLOB PRIMARY KEY, sender TEXT NOT NULL, wrapped BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erased (ref BLOB PRIMARY KEY, sender TEXT NOT NULL, erasure TEXT NOT NULL, "
    "erased_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS delivery_keys (id BLOB PRIMARY KEY, public TEXT NOT NULL, wrapped BLOB NOT NULL, "
    "made INTEGER NOT NULL)",
)
_ADDED = {  # columns added after the first release of the file (ALTER TABLE when missing)
    "made_at": "ALTER TABLE delivery_keys ADD COLUMN made_at TEXT NOT NULL DEFAULT ''",
    "announced": "ALTER TABLE delivery_keys ADD COLUMN announced INTEGER NOT NULL DEFAULT 0",
}


class PortalWireKeys:
    def __init__(self, path: Path, kek: KeyWrapper) -> None:
        self.path = path
        self.wrapper = kek
        self._lock = threading.Lock()
        private_file(path)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = DELETE")
        for stmt in _SCHEMA:
            self._db.execute(stmt)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(delivery_keys)").fetchall()}
        for column, stmt in _ADDED.items():
            if column not in have:
                self._db.execute(stmt)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- wire keys ---------------------------------------------------------------------------------
    def keep(self, ref: bytes, sender: str, key: bytes) -> bool:
        """Keep a provider's wire key; False if held already, or erased before (an old key message again)."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM erased WHERE ref = ?", (ref,)).fetchone() is not None:
                return False
            done = self._db.execute(
                "INSERT OR IGNORE INTO wire_keys (ref, sender, wrapped) VALUES (?, ?, ?)",
                (ref, sender, self.wrapper.wrap(key, ref)),
            )
            return done.rowcount == 1

    def key(self, ref: bytes, sender: str) -> bytes | None:
        """The wire key ``ref`` names if ``sender`` delivered it (no provider's key opens another's record)."""
        with self._lock:
            row = self._db.execute("SELECT sender, wrapped FROM wire_keys WHERE ref = ?", (ref,)).fetchone()
        if row is None or row[0] != sender:
            return None
        return self.wrapper.unwrap(bytes(row[1]), ref)

    def erased(self, ref: bytes) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM erased WHERE ref = ?", (ref,)).fetchone() is not None

    def destroy(self, sender: str, refs: list[bytes], erasure: str, at: str) -> int:
        """Destroy ``sender``'s keys among ``refs`` (another provider's are left) and record each; returns how
        many were held."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                gone = 0
                for ref in refs:
                    mine = "DELETE FROM wire_keys WHERE ref = ? AND sender = ?"
                    gone += cur.execute(mine, (ref, sender)).rowcount
                    held = cur.execute("SELECT 1 FROM wire_keys WHERE ref = ?", (ref,)).fetchone()
                    if held is None:
                        cur.execute("INSERT OR IGNORE INTO erased VALUES (?, ?, ?, ?)", (ref, sender, erasure, at))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._db.execute("VACUUM")
        return gone

    def erasures(self) -> list[dict[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT ref, sender, erasure, erased_at FROM erased ORDER BY erased_at").fetchall()
        return [{"ref": bytes(r).hex(), "sender": s, "erasure": e, "erased_at": t} for r, s, e, t in rows]

    def all_keys(self) -> dict[bytes, bytes]:
        """Every wire key held, by ref (what an insider with the portal's KEK reads)."""
        with self._lock:
            rows = self._db.execute("SELECT ref, wrapped FROM wire_keys").fetchall()
        return {bytes(r): self.wrapper.unwrap(bytes(w), bytes(r)) for r, w in rows}

    # -- delivery keys -----------------------------------------------------------------------------
    def rotate(self, at: str = "") -> tuple[str, X25519PublicKey]:
        """A new delivery key (made ``at``, ISO 8601); returns its id (hex) and public half, to publish."""
        private = X25519PrivateKey.generate()
        key_id, raw = os.urandom(16), private.private_bytes_raw()
        with self._lock:
            made = self._db.execute("SELECT COALESCE(MAX(made), 0) + 1 FROM delivery_keys").fetchone()[0]
            self._db.execute(
                "INSERT INTO delivery_keys (id, public, wrapped, made, made_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, public_hex(private.public_key()), self.wrapper.wrap(raw, key_id), made, at),
            )
        return key_id.hex(), private.public_key()

    def newest(self) -> tuple[str, X25519PublicKey, int, str, bool] | None:
        """The newest delivery key: id, public half, serial, when made, whether announced; None before the first."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, public, made, made_at, announced FROM delivery_keys ORDER BY made DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        public = X25519PublicKey.from_public_bytes(bytes.fromhex(row[1]))
        return bytes(row[0]).hex(), public, int(row[2]), str(row[3]), bool(row[4])

    def announced(self, key_id: str) -> None:
        """The key's signed announcement is in the portal's outbox: not handed over again."""
        with self._lock:
            self._db.execute("UPDATE delivery_keys SET announced = 1 WHERE id = ?", (bytes.fromhex(key_id),))

    def retire_superseded(self, before: str) -> int:
        """Destroy the private half of every delivery key whose successor was made before ``before`` (ISO 8601,
        UTC): its period ended at least the grace ago. A key made before ``made_at`` was kept (``""``) counts as
        made at the epoch. Returns how many."""
        with self._lock:
            rows = self._db.execute("SELECT id, made, made_at FROM delivery_keys ORDER BY made").fetchall()
            gone = [
                bytes(rows[i][0])
                for i in range(len(rows) - 1)
                if (rows[i + 1][2] or "0000") < before  # the successor's time, as UTC ISO text
            ]
            for key_id in gone:
                self._db.execute("DELETE FROM delivery_keys WHERE id = ?", (key_id,))
            if gone:
                self._db.execute("VACUUM")
        return len(gone)

    def current(self) -> tuple[str, X25519PublicKey] | None:
        """The newest delivery key's id and public half (what the portal publishes); None before the first."""
        with self._lock:
            row = self._db.execute("SELECT id, public FROM delivery_keys ORDER BY made DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return bytes(row[0]).hex(), X25519PublicKey.from_public_bytes(bytes.fromhex(row[1]))

    def delivery(self, key_id: str) -> X25519PrivateKey | None:
        with self._lock:
            row = self._db.execute(
                "SELECT wrapped FROM delivery_keys WHERE id = ?", (bytes.fromhex(key_id),)
            ).fetchone()
        if row is None:
            return None
        return X25519PrivateKey.from_private_bytes(self.wrapper.unwrap(bytes(row[0]), bytes.fromhex(key_id)))

    def deliveries(self) -> list[X25519PrivateKey]:
        """Every delivery key's private half still held (the tests' insider scan)."""
        with self._lock:
            ids = [bytes(r[0]).hex() for r in self._db.execute("SELECT id FROM delivery_keys").fetchall()]
        return [k for i in ids if (k := self.delivery(i)) is not None]

    def retire(self, keep: int = 1) -> int:
        """Destroy the private halves of every delivery key but the newest ``keep``; returns how many."""
        with self._lock:
            done = self._db.execute(
                "DELETE FROM delivery_keys WHERE id NOT IN (SELECT id FROM delivery_keys ORDER BY made DESC LIMIT ?)",
                (keep,),
            ).rowcount
            self._db.execute("VACUUM")
        return int(done)
