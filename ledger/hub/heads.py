"""The hub's flag map in its loop (issue #20): rebuilt at start, each filed change folded, heads signed and
announced, routing decisions proved. Used by :class:`ledger.hub.service.HubService` when it is given one.

* **The map** is derived state (``ledger.hub.flag_map_load``): at start, or on taking the lease, it is rebuilt
  from ``hub_flag_changes``; after that each change filed is folded by reading the changes past the last one
  folded — so a redelivered change, filed once under its first number, is folded once too.
* **The hub's log**, which each head commits to beside the map (RFC 6962, ``ledger.merkle``), has one leaf per
  filed flag change, in sequence order (:func:`log_leaf`): rebuilt from the same rows, so an auditor with a copy
  of the database recomputes both roots of a head. Number changes alter the map (``relink``) and not the log.
* **Map keys**: at a person's first registration the hub evaluates its VRF on the number
  (``ledger.linkage.person_keys``) and keeps the key in ``hub_person_keys`` (it keeps no number); every
  registration is answered with the VRF proof.
* **Heads** are items of the hub's own sequence (``sequencer.append``: fenced like any write, so a deposed
  leader signs none), kept in ``hub_heads`` and owed to every agency in the transaction that keeps them, each
  with the log's consistency proof from the head before and the recipient's own holding proofs. A head is
  signed when the map or the log changed since the last one — before a query is routed, so a decision always
  cites the head of the map as it is — and at least every ``every`` (heartbeat), so a provider can bound the age
  of the head it acts under (``ledger.linkage.checks``). Each head is the next link of one chain (its index and
  its predecessor's digest, ``ledger.linkage.map_heads``), continued across restarts from ``hub_heads``.
* **Cosignatures**: a witness cosigns each head it found consistent and sends it here; the hub keeps it
  (``hub_cosignatures``: evidence of what was witnessed) once it checks and is of a head the hub signed, and
  passes a head's cosignatures on — with a routing decision that cites it, and with the next head's
  announcement — so providers and holders count them (``ledger.linkage.cosigned_heads``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, InputError, IntegrityError
from ledger.hub.inbox import owe
from ledger.hub.links import joined
from ledger.hub.log import HubStore
from ledger.hub.tables import hub_cosignatures, hub_flag_changes, hub_heads, hub_person_keys
from ledger.linkage.codes import persons_of
from ledger.linkage.cosigned_heads import Cosig, encode_cosigs
from ledger.linkage.flag_map import MapProof, map_key
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.hub_wire import decode_head, encode_head
from ledger.linkage.map_heads import MapHead, RoutingDecision
from ledger.linkage.map_messages import MAX_HOLDINGS, Holding, MapHeadMessage, encode_holdings
from ledger.linkage.messages import Message
from ledger.linkage.person_keys import PersonKeyProver, verify_person_key
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.tree_heads import Cosignature
from ledger.log.signing import Signer
from ledger.merkle import CompactRange, consistency_proof, leaf_hash
from ledger.storage import storage_error

__all__ = ["MapHeads", "Seal", "log_leaf"]

Seal = Callable[[str, Message], tuple[str, bytes]]


def log_leaf(seq: int, person: str, holder: str, flag: str, action: str) -> bytes:
    """The RFC 6962 leaf hash of one filed flag change in the hub's log."""
    return leaf_hash(f"flagledger/hub-log/flag/1\x00{seq}\x00{person}\x00{holder}\x00{flag}\x00{action}".encode())


@dataclass
class MapHeads:
    """The hub's map, log and heads; ``signer`` is the hub's, ``prover`` its VRF key for map keys."""

    signer: Signer
    prover: PersonKeyProver
    every: timedelta = timedelta(seconds=10)
    started: bool = False
    flags: HubFlagMap = field(init=False)
    leaves: list[bytes] = field(default_factory=list)
    tree: CompactRange = field(default_factory=CompactRange)
    folded: int = 0  # the last sequence number of a flag change folded
    keys: dict[str, bytes] = field(default_factory=dict)  # person id → map key
    last: MapHead | None = None  # the newest head signed (and announced)
    relink: set[str] = field(default_factory=set)  # person ids whose number chain changed since the last fold
    cosigs: dict[int, dict[str, Cosig]] = field(default_factory=dict)  # head seq → witness → cosignature (recent)

    # -- state -------------------------------------------------------------------------------------------
    def key_of(self, person: str) -> bytes:
        # a person registered before the hub kept VRF keys has the plain key; nothing else reaches here
        return self.keys.get(person) or map_key(person)

    def start(self, store: HubStore) -> None:
        """Rebuild from the database: map keys, the map and the log from the filed changes, the last head."""
        try:
            with store.engine.connect() as conn:
                self.keys = {str(p): bytes(k) for p, k in conn.execute(select(hub_person_keys))}
                rows = conn.execute(select(hub_heads.c.head).order_by(hub_heads.c.seq.desc()).limit(2)).all()
                c = hub_cosignatures.c
                since = -1 if len(rows) < 2 else decode_head(bytes(rows[-1][0])).seq
                cosigs = conn.execute(select(c.seq, c.witness, c.key_id, c.signature).where(c.seq >= since)).all()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's map keys and heads", exc) from exc
        codes = store.codes
        self.flags = HubFlagMap(
            chain=lambda person: persons_of(codes, person),
            key_of=self.key_of,
            code_of=lambda person, holder: codes.codes(person).get(holder, ""),
            cover=lambda person: joined(store.engine, person),  # a wrong link's undo keeps what it covered
        )
        self.leaves, self.tree, self.folded, self.relink = [], CompactRange(), 0, set()
        self.last = None if not rows else decode_head(bytes(rows[0][0]))
        self.cosigs = {}
        for seq, witness, key_id, signature in cosigs:
            self.cosigs.setdefault(int(seq), {})[str(witness)] = (str(witness), str(key_id), bytes(signature))
        self.refresh(store)
        self.started = True

    def refresh(self, store: HubStore) -> None:
        """Fold the flag changes filed since the last fold, then relink the chains that changed."""
        f = hub_flag_changes.c
        stmt = select(f.seq, f.person, f.holder, f.flag, f.action).where(f.seq > self.folded).order_by(f.seq)
        try:
            with store.engine.connect() as conn:
                rows = [(int(s), str(p), str(h), str(fl), str(a)) for s, p, h, fl, a in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's flag changes", exc) from exc
        for seq, person, holder, flag, action in rows:
            self.fold(FlagChange(seq, person, holder, flag, action))  # type: ignore[arg-type]
        for person in sorted(self.relink):
            self.flags.relink(person)
        self.relink.clear()

    def fold(self, change: FlagChange) -> None:
        """One filed change into the map and the log (a malicious hub in tests bends this)."""
        self.flags.apply(change)
        leaf = log_leaf(change.seq, change.person, change.holder, change.flag, change.action)
        self.leaves.append(leaf)
        self.tree.append(leaf)
        self.folded = change.seq

    def changed(self) -> bool:
        last = self.last
        return last is None or last.map_root != self.flags.root() or last.log_size != len(self.leaves)

    def due(self, now: datetime) -> bool:
        if self.last is None:
            return True
        try:
            return now - datetime.fromisoformat(self.last.time) >= self.every
        except (ValueError, TypeError):
            return True

    # -- registrations -----------------------------------------------------------------------------------
    def registered(self, person: str, number: str) -> tuple[bytes, bytes, Callable[[Connection, int], None]]:
        """The VRF proof for ``number``, the person's map key, and the write that keeps the key (first time)."""
        pi = self.prover.prove(number)
        key = verify_person_key(self.prover.public_key, number, pi)

        def keep(conn: Connection, _: int) -> None:
            k = hub_person_keys.c
            if conn.execute(select(k.person).where(k.person == person)).first() is None:
                conn.execute(insert(hub_person_keys).values(person=person, map_key=key))

        return pi, key, keep

    # -- heads -------------------------------------------------------------------------------------------
    def holdings_of(self, store: HubStore, holder: str, seq: int) -> list[Holding]:
        """The holder's own proofs under head ``seq``: all of them, or a window of ``MAX_HOLDINGS`` that moves
        with each head, so every holding is shown within a few heads and no announcement outgrows a bucket."""
        # the holder's codes in one query, not one per holding: a head goes out after every change and every
        # ``every``, to every agency, and a municipality may hold flags on a great many people
        held = store.codes.holder_codes(holder, {p for p, who in self.flags.holdings if who == holder})
        mine = sorted((code, person) for person, code in held.items())  # in the holder's own order
        if len(mine) > MAX_HOLDINGS:
            start = seq * MAX_HOLDINGS % len(mine)
            mine = (mine[start:] + mine[:start])[:MAX_HOLDINGS]
        # each holding's code as read above: not read again per holding (48 reads per holder per head)
        return [(code, *self.flags.holder_proofs(person, holder, code)) for code, person in mine]

    def consistency(self, since: MapHead | None) -> list[bytes]:
        size = 0 if since is None else since.log_size
        return consistency_proof(self.leaves, size) if size <= len(self.leaves) else []

    def announcement(self, store: HubStore, head: MapHead, since: MapHead | None, recipient: str) -> MapHeadMessage:
        proof = b"".join(self.consistency(since))
        holdings = encode_holdings(self.holdings_of(store, recipient, head.seq))
        before = "" if since is None else encode_cosigs(self.cosignatures(since.seq))
        return MapHeadMessage(encode_head(head).hex(), proof.hex(), holdings, before)

    # -- cosignatures --------------------------------------------------------------------------------------
    def cosignatures(self, seq: int) -> list[Cosig]:
        """The witnesses' cosignatures of the head at ``seq`` the hub holds (of its two newest heads)."""
        return sorted(self.cosigs.get(seq, {}).values())

    def cosign(
        self, witness: str, message: Cosignature, keys: SenderKeys
    ) -> tuple[Callable[[Connection, int], None], Callable[[], None]]:
        """The write that keeps ``witness``'s cosignature (once) and what to do after its commit; refused
        (``bad_signature``, ``malformed``) if it does not check or is of a head this hub did not sign."""
        subject = message.verify(keys, witness)
        head = decode_head(subject)
        cosig = (witness, message.key_id, bytes.fromhex(message.signature))

        def keep(conn: Connection, _: int) -> None:
            row = conn.execute(select(hub_heads.c.head).where(hub_heads.c.seq == head.seq)).first()
            if row is None or bytes(row[0]) != subject:
                raise IntegrityError(f"{witness} cosigned a head this hub did not sign", code=Code.MALFORMED)
            c = hub_cosignatures.c
            if conn.execute(select(c.seq).where((c.seq == head.seq) & (c.witness == witness))).first() is None:
                conn.execute(insert(hub_cosignatures).values(seq=head.seq, witness=witness, key_id=cosig[1],
                                                             signature=cosig[2]))  # fmt: skip

        def kept() -> None:
            self.cosigs.setdefault(head.seq, {}).setdefault(witness, cosig)
            for old in sorted(self.cosigs)[:-8]:  # the newest few heads' in memory; all of them in the table
                del self.cosigs[old]

        return keep, kept

    def sign(self, store: HubStore, *, seq: int, time: str) -> MapHead:
        return self.flags.head(
            self.signer, seq=seq, log_size=len(self.leaves), log_root=self.tree.root(), time=time, after=self.last
        )

    def publish(self, store: HubStore, seal: Seal, recipients: list[str], now: datetime) -> MapHead:
        """Sign a head in the next number of the hub's sequence, keep it, and owe it to every recipient."""
        since, made = self.last, []

        def write(conn: Connection, seq: int) -> None:
            head = self.sign(store, seq=seq, time=now.isoformat())
            conn.execute(insert(hub_heads).values(seq=seq, head=encode_head(head)))
            for recipient in recipients:
                owe(conn, *seal(recipient, self.announcement(store, head, since, recipient)))
            made.append(head)

        store.sequencer.append(lambda conn: None, write)
        self.last = made[-1]
        return self.last

    def settle(self, store: HubStore, seal: Seal, recipients: list[str], now: datetime) -> MapHead:
        """Fold what was filed; sign and announce a head if the map or log changed, or the last is due."""
        self.refresh(store)
        if self.changed() or self.due(now) or self.last is None:
            return self.publish(store, seal, recipients, now)
        return self.last

    # -- routing -----------------------------------------------------------------------------------------
    def route(self, *, request: str, provider: str, person: str) -> tuple[RoutingDecision, MapHead, MapProof]:
        """The decision about ``person`` (the id the provider registered) under the newest head (settled)."""
        head = self.last
        if head is None:
            raise InputError("the hub routes under a head: settle the map first", code=Code.STALE_MAP)
        decision, proof = self.flags.route(self.signer, request=request, provider=provider, person=person, head=head)
        return decision, head, proof
