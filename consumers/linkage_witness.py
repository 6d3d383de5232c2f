"""An agency node in hub mode and the witnesses (issue #20, docs/accountable-hub.md): it publishes its own signed
checkpoints, and takes what the witnesses send back.

**Out** (:meth:`WitnessLink.publish`, in each push): the node signs checkpoints as a shared-mode node does
(``Checkpointer.sign_due`` under ``checkpoints``' settings); the newest one, once larger than the last published
(``linkage_position`` row ``head``, durable), goes to the hub with the RFC 6962 consistency proof from that size
(``AgencyEnd.publish_head``; the hub forwards both to the witnesses) and, the head alone, to each witness of
``linkage.witnesses`` through the hub's relay (nothing is signed or sent while that list is empty). A log shown
one way to the hub and another to a witness — an insider rewriting this agency's log, or a hub forging what it
forwards — is then caught by a witness.

**In** (:meth:`WitnessLink.take`, before the flag map's gate): a ``cosignature`` of one of this agency's heads by
a configured witness is checked with that witness's key from the agency's directory, then kept as evidence
(``linkage_cosignatures``: the head's bytes and the signature, so an auditor can check it again with the
witness's public key alone; ``flagledger linkage cosignatures`` lists them) and counted (``linkage_position`` row
``cosigned:<witness>``: the largest size it cosigned); one that does not verify is parked, never kept;
a ``witness_incident`` about this agency or the hub whose evidence checks (``check_finding``: the accused's own
signatures) is parked with its evidence and raised as a security ``Incident`` for the agency, as the flag map's
``HubIncident`` is (``consumers.linkage_map``). Evidence that does not check is parked, and raises nothing: a
witness cannot frame the agency with heads it did not sign.

**Uncosigned**: when a published head has been cosigned by none of the configured witnesses for
``linkage.map.witness_deadline_seconds`` (default 300; ``linkage_position`` row ``head_at``: when it was
published), the node raises ``head_uncosigned`` once per head (row ``uncosigned``) — a hub dropping the
agency's relays, or witnesses gone, leaves the agency's log unwitnessed, and someone must know.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, insert, select, update

from consumers.taken_first import Handler, taken_first
from ledger.app.checkpoints import Checkpointer, CheckpointSettings, latest_checkpoint
from ledger.app.incidents import ParkedMessage, raise_incidents
from ledger.errors import Code, FlagLedgerError, IntegrityError, NotFoundError
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.directory import Directory
from ledger.linkage.messages import Message
from ledger.linkage.names import HUB
from ledger.linkage.tree_heads import Cosignature, TreeHead, WitnessIncident, decode_tree_head
from ledger.merkle import consistency_proof
from ledger.runtime.hub_map import MapSettings
from ledger.runtime.linkage import HubEntry, hosted_agency, linkage_directory, published, witness_entries
from ledger.runtime.tables import linkage_cosignatures, linkage_parked, linkage_position
from ledger.witness.book import Finding, check_finding

__all__ = ["HEAD", "WitnessLink", "cosignatures", "position", "set_position"]

HEAD = "head"  # linkage_position: the size of the last tree head published
HEAD_AT = "head_at"  # when it was published (POSIX seconds)
UNCOSIGNED = "uncosigned"  # the size of the last head raised as uncosigned
log = logging.getLogger("flagledger.linkage")


def position(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(select(linkage_position.c.position).where(linkage_position.c.name == name)).scalar()
    return int(found or 0)


def set_position(engine: Engine, name: str, value: int) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(linkage_position).where(linkage_position.c.name == name).values(position=value))
        if done.rowcount == 0:
            conn.execute(insert(linkage_position).values(name=name, position=value))


def cosignatures(engine: Engine) -> list[dict[str, object]]:
    """The witnesses' cosignatures kept at this node, by size then witness: each with the head's bytes and the
    signature (hex) to check again against the witness's key (``Cosignature.verify``)."""
    c = linkage_cosignatures.c
    with engine.connect() as conn:
        rows = conn.execute(select(linkage_cosignatures).order_by(c.size, c.witness)).all()
    return [
        {"witness": r.witness, "size": int(r.size), "root": r.root, "key_id": r.key_id,
         "head": bytes(r.head).hex(), "signature": bytes(r.signature).hex(), "received_at": r.received_at}
        for r in rows
    ]  # fmt: skip


class WitnessLink:
    """One agency node's checkpoints to the witnesses, and the witnesses' answers back."""

    def __init__(self, node: Any, engine: Engine, end: AgencyEnd) -> None:
        self.node, self.engine, self.end = node, engine, end
        self.agency = hosted_agency(node.config)
        self.witnesses = tuple(name for name, _ in witness_entries(node.config))
        self.hub_key = Ed25519PublicKey.from_public_bytes(
            bytes.fromhex(HubEntry.of(node.config.linkage["hub"]).public_hex)
        )
        # the heads in a finding about this agency are checked against its own published key
        self.keys: Directory = linkage_directory(node.config)
        self.keys.add(*published(node))
        self.checkpointer = Checkpointer(node.app)
        self.settings = CheckpointSettings.from_config(node.config)
        self.deadline = MapSettings.from_linkage(node.config.linkage).witness_deadline_seconds
        self.raised = 0  # incidents recorded from witnesses by this link

    # -- out -----------------------------------------------------------------------------------------
    def publish(self) -> int:
        """Sign a checkpoint if one is due, and publish the newest one not yet published; returns its size, or
        0 if nothing was published. Off without ``linkage.witnesses`` (no one would hold the heads)."""
        if not self.witnesses:
            return 0
        self.uncosigned()
        self.checkpointer.sign_due(self.settings, time.monotonic())
        try:
            cp = latest_checkpoint(self.node.app, self.agency)
        except NotFoundError:
            return 0
        last = position(self.engine, HEAD)
        if cp.tree_size <= last:
            return 0  # published already (a smaller one, after a restore from backup, is left to the witnesses)
        self.checkpointer.refresh()
        if cp.prev_size == last:
            proof = cp.consistency
        else:  # checkpoints signed in between were not published (a crash, the command line's)
            proof = tuple(consistency_proof(self.checkpointer.leaves[: cp.tree_size], last)) if last else ()
        head = TreeHead(cp.origin, cp.tree_size, cp.root, cp.time, cp.key_id, cp.signature)
        self.end.publish_head(head, last, proof, self.witnesses)
        set_position(self.engine, HEAD, cp.tree_size)
        set_position(self.engine, HEAD_AT, int(self.node.app.clock().timestamp()))
        return cp.tree_size

    def uncosigned(self) -> bool:
        """Raise ``head_uncosigned`` if the last head published has waited past the deadline for any configured
        witness's cosignature (once per head); True if it raised."""
        size = position(self.engine, HEAD)
        if not size or max(self.cosigned().values(), default=0) >= size or position(self.engine, UNCOSIGNED) >= size:
            return False
        waited = self.node.app.clock().timestamp() - position(self.engine, HEAD_AT)
        if waited <= self.deadline:
            return False
        set_position(self.engine, UNCOSIGNED, size)
        witnesses = ", ".join(self.witnesses)
        note = f"{self.agency}'s head of size {size} is cosigned by none of {witnesses} after {waited:.0f} s"
        self._park(Code.HEAD_UNCOSIGNED, note, f"{self.agency}:{size}".encode(), "linkage:witness")
        return True

    # -- in ------------------------------------------------------------------------------------------
    def gate(self, inner: Handler) -> Handler:
        """``inner`` (the flag map's gate) with the witnesses' kinds taken here first."""

        return taken_first(self.take, inner)

    def take(self, message: Message) -> bool:
        """True if ``message`` was a witness's (recorded here); a ledger error parks one that does not check."""
        if isinstance(message, Cosignature):
            self._cosigned(message)
            return True
        if isinstance(message, WitnessIncident):
            self._incident(message)
            return True
        return False

    def cosigned(self) -> dict[str, int]:
        """Each configured witness's largest cosigned size of this agency's heads (0: none yet)."""
        return {w: position(self.engine, f"cosigned:{w}") for w in self.witnesses}

    def _cosigned(self, message: Cosignature) -> None:
        keys = self.keys.sender_keys(self.node.app.clock())
        for witness in self.witnesses:
            try:
                head = decode_tree_head(message.verify(keys, witness))
            except FlagLedgerError:
                continue
            if head.origin != self.agency:
                break
            self._keep(witness, head, message)
            if head.size > position(self.engine, f"cosigned:{witness}"):
                set_position(self.engine, f"cosigned:{witness}", head.size)
            return
        raise IntegrityError("a cosignature of no head of this agency by a configured witness", code=Code.MALFORMED)

    def _keep(self, witness: str, head: TreeHead, message: Cosignature) -> None:
        """Keep a verified cosignature as evidence; one already kept (a redelivery) is kept once."""
        row = {
            "witness": witness,
            "size": head.size,
            "root": head.root.hex(),
            "key_id": message.key_id,
            "head": bytes.fromhex(message.subject),
            "signature": bytes.fromhex(message.signature),
            "received_at": self.node.app.clock().isoformat(),
        }
        c = linkage_cosignatures.c
        with self.engine.begin() as conn:
            if conn.execute(select(c.size).where((c.witness == witness) & (c.size == head.size))).first() is None:
                conn.execute(insert(linkage_cosignatures).values(**row))

    def _incident(self, message: WitnessIncident) -> None:
        if message.accused not in (self.agency, HUB):
            raise IntegrityError(f"a witness incident about {message.accused}, not this agency", code=Code.WRONG_ROUTE)
        try:
            finding = Finding.of(message)
        except ValueError as exc:
            raise IntegrityError(f"a witness incident's evidence is malformed: {exc}", code=Code.MALFORMED) from None
        if not check_finding(finding, self.hub_key, self.keys.sender_keys(self.node.app.clock())):
            raise IntegrityError("a witness incident whose evidence does not show it", code=Code.MALFORMED)
        log.error("a witness found %s of %s: %s", finding.code, finding.accused, finding.note)
        self._park(finding.code, finding.note, finding.evidence(), "linkage:witness")

    def _park(self, code: str, note: str, raw: bytes, source: str) -> None:
        """Park ``raw`` under ``code`` and raise the incident from it."""
        with self.engine.begin() as conn:
            done = conn.execute(
                insert(linkage_parked).values(
                    at=self.node.app.clock().isoformat(), direction="in", code=code, reason=note[:2000], message=raw
                )
            )
            parked_id = int(done.inserted_primary_key[0])  # type: ignore[index]
        self.raised += len(raise_incidents(self.node, ParkedMessage(parked_id, code, note, source, raw)))
