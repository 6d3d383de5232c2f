"""The witness's own database (SQLite or PostgreSQL): the heads it holds, what it found, the messages it applied
and the ones it owes (sent after the commit that owes them, so a crash between sends them again, never loses
them). A small store of its own, like the portal's: its tables are made when it opens.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from ledger.linkage.hub_wire import decode_head, encode_head
from ledger.linkage.map_heads import MapHead
from ledger.linkage.tree_heads import TreeHead, WitnessIncident, decode_tree_head, encode_tree_head
from ledger.storage import open_tables, storage_error
from ledger.witness.book import Finding, Kept

__all__ = ["WitnessStore", "open_witness_store"]

metadata = MetaData()
witness_hub_heads = Table(
    "witness_hub_heads",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("head", LargeBinary, nullable=False),
    Column("latest", Boolean, nullable=False),
)
witness_tree_heads = Table(
    "witness_tree_heads",
    metadata,
    Column("origin", String(32), primary_key=True),
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("head", LargeBinary, nullable=False),
    Column("latest", Boolean, nullable=False),
)
witness_findings = Table(
    "witness_findings",
    metadata,
    Column("digest", String(64), primary_key=True),  # a finding made again (a redelivery) is kept once
    Column("code", String(32), nullable=False),
    Column("accused", String(32), nullable=False),
    Column("evidence", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
)
witness_seen = Table(
    "witness_seen",
    metadata,
    Column("sender", String(32), primary_key=True),
    Column("event_id", String(32), primary_key=True),
)
# peers' cosignatures of heads this witness showed them (gossip): evidence an auditor can show that another
# witness saw the same head; kept once per peer and head
witness_cosignatures = Table(
    "witness_cosignatures",
    metadata,
    Column("witness", String(32), primary_key=True),
    Column("digest", String(64), primary_key=True),  # SHA-256 of the head's bytes
    Column("subject", LargeBinary, nullable=False),  # the head as it travelled (map head or tree head)
    Column("key_id", String(128), nullable=False),
    Column("signature", LargeBinary, nullable=False),  # over tree_heads.cosigned(subject)
)
witness_outbox = Table(
    "witness_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message", LargeBinary, nullable=False),  # sealed to the hub (a relay, or to the hub itself)
)


class WitnessStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self, what: str, *statements: object) -> None:
        try:
            with self.engine.begin() as conn:
                for stmt in statements:
                    conn.execute(stmt)  # type: ignore[call-overload]
        except SQLAlchemyError as exc:
            raise storage_error(f"cannot keep {what}", exc, "nothing was kept") from exc

    # -- WitnessKeep -----------------------------------------------------------------------------------------
    def cosignature(self, witness: str, subject: bytes, key_id: str, signature: bytes) -> None:
        """Keep a peer's checked cosignature of ``subject`` (once)."""
        c, digest = witness_cosignatures.c, hashlib.sha256(subject).hexdigest()
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(c.digest).where((c.witness == witness) & (c.digest == digest))).first():
                    return
                conn.execute(insert(witness_cosignatures).values(witness=witness, digest=digest, subject=subject,
                                                                 key_id=key_id, signature=signature))  # fmt: skip
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep a cosignature", exc, "nothing was kept") from exc

    def cosignatures(self) -> list[tuple[str, bytes, str, bytes]]:
        """Every cosignature kept: (witness, subject, key id, signature)."""
        c = witness_cosignatures.c
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(c.witness, c.subject, c.key_id, c.signature).order_by(c.witness, c.digest))
                return [(str(w), bytes(s), str(k), bytes(g)) for w, s, k, g in rows]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the cosignatures", exc) from exc

    def load(self) -> Kept:
        try:
            with self.engine.connect() as conn:
                hubs = list(conn.execute(select(witness_hub_heads).order_by(witness_hub_heads.c.seq)))
                trees = list(conn.execute(select(witness_tree_heads)))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the witness's heads", exc) from exc
        kept = Kept([decode_head(bytes(r.head)) for r in hubs], None, [decode_tree_head(bytes(r.head)) for r in trees])
        kept.hub_latest = next((int(r.seq) for r in hubs if r.latest), None)
        kept.tree_latest = {str(r.origin): int(r.size) for r in trees if r.latest}
        return kept

    def hub_head(self, head: MapHead, latest: bool) -> None:
        h = witness_hub_heads
        statements: list[object] = [update(h).values(latest=False).where(h.c.latest)] if latest else []
        statements.append(insert(h).values(seq=head.seq, head=encode_head(head), latest=latest))
        self._write("the hub's head", *statements)

    def tree_head(self, head: TreeHead, latest: bool) -> None:
        t = witness_tree_heads
        mine = (t.c.origin == head.origin) & (t.c.size == head.size)
        try:
            with self.engine.begin() as conn:
                if latest:
                    conn.execute(update(t).values(latest=False).where((t.c.origin == head.origin) & t.c.latest))
                if conn.execute(select(t.c.size).where(mine)).first() is None:
                    conn.execute(insert(t).values(origin=head.origin, size=head.size, head=encode_tree_head(head),
                                                  latest=latest))  # fmt: skip
                elif latest:
                    conn.execute(update(t).values(latest=True).where(mine))
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep an agency's head", exc, "nothing was kept") from exc

    # -- findings, applied ids, the outbox -------------------------------------------------------------------
    def finding(self, found: Finding, owes: list[bytes]) -> bool:
        """Keep ``found`` and owe its messages in one transaction; False if it was kept before (owed then)."""
        row = {"digest": found.digest(), "code": found.code, "accused": found.accused, "note": found.note[:500]}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(witness_findings).values(evidence=found.evidence(), **row))
                for message in owes:
                    conn.execute(insert(witness_outbox).values(message=message))
        except SqlIntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep a finding", exc, "nothing was kept") from exc
        return True

    def findings(self) -> list[Finding]:
        try:
            with self.engine.connect() as conn:
                rows = list(conn.execute(select(witness_findings)))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the witness's findings", exc) from exc
        return [Finding.of(WitnessIncident(r.code, r.accused, bytes(r.evidence).hex(), r.note)) for r in rows]

    def owe(self, messages: list[bytes]) -> None:
        self._write("messages owed", *(insert(witness_outbox).values(message=m) for m in messages))

    def owed(self) -> list[tuple[int, bytes]]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(witness_outbox.c.id, witness_outbox.c.message).order_by(witness_outbox.c.id))
                return [(int(i), bytes(m)) for i, m in rows]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the witness's outbox", exc) from exc

    def paid(self, ids: list[int]) -> None:
        self._write("the outbox", delete(witness_outbox).where(witness_outbox.c.id.in_(ids)))

    def was_seen(self, sender: str, event_id: str) -> bool:
        s = witness_seen.c
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(s.event_id).where((s.sender == sender) & (s.event_id == event_id)))
                return found.first() is not None
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the witness's applied ids", exc) from exc

    def seen(self, sender: str, event_id: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(witness_seen).values(sender=sender, event_id=event_id))
        except SqlIntegrityError:
            return
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep an applied id", exc) from exc

    def close(self) -> None:
        self.engine.dispose()


def open_witness_store(url: str) -> WitnessStore:
    return WitnessStore(open_tables(url, metadata, "the witness's tables"))
