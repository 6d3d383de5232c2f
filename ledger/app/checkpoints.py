"""Transparency-log checkpoints over the local event log: signing them (the app layer writes them).

Checking a peer's and holding its stream: :mod:`ledger.app.holds`; ``audit verify``'s use of them:
:mod:`ledger.audit.checkpoints`; inclusion proofs: :mod:`ledger.audit.proofs`.

**The log and its leaves.** The tree is RFC 6962's over every event this node stores — its own and those
ingested from other agencies — in the log's total order (notification position). Leaf ``i`` is the
``i``-th stored event counting from 0; positions may have gaps (PostgreSQL sequences skip), indexes do not.
The leaf *entry* is the event's signed envelope header (canonical JSON naming event id, origin, key, stream,
version, chain link, topic, time and the payload's SHA-256), so the leaf hash is exactly the envelope's
``leaf_hash`` = ``SHA-256(0x00 ‖ header)`` that the stream's hash chain already uses. Payloads are covered
through the digest, so crypto-shredding a payload later leaves every leaf and checkpoint valid.

**A checkpoint** is a signed statement (:func:`statement`) by an agency key: origin, tree size, root, time.
It is recorded as a ``CheckpointSigned`` event of the agency's :class:`~ledger.domain.checkpoints.CheckpointLog`
carrying the predecessor's size/root and an RFC 6962 consistency proof from it, so a peer holding only the
shared events can still check each checkpoint extends the last one it holds (:func:`check_incoming`).
A checkpoint covers only events stored before it, so a checkpoint at leaf index ``p`` claims ``tree_size <= p``.

**What they add** to the signed log heads every batch of this node carries (:mod:`ledger.log.check`): they are
shared, so a peer holds this node's latest head and checks each new one extends it (a fork holds the agency); a
copy kept elsewhere (a peer's, or :func:`sign_head`'s export) catches a cut tail that nothing inside the log
shows once the head row is rewritten. The node signs one every N events or T seconds (:class:`CheckpointSettings`,
:meth:`Checkpointer.sign_due`). ``audit verify`` reads the checkpoint events first (:func:`collect_checkpoints`)
and compares their roots in its one pass over the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from cryptography.exceptions import InvalidSignature
from pydantic import Field

from ledger.app.access import LedgerAccess
from ledger.domain.checkpoints import CheckpointLog
from ledger.errors import FlagLedgerError, InputError, IntegrityError, NotFoundError
from ledger.log.signing import key_id_for, public_key_from_hex
from ledger.merkle import EMPTY_ROOT, CompactRange, consistency_proof, root_hash, verify_consistency
from ledger.settings import Section, section_config

__all__ = [
    "CHECKPOINT_STREAM_PREFIX",
    "CHECKPOINT_TOPIC",
    "Checkpoint",
    "CheckpointSettings",
    "Checkpointer",
    "is_checkpoint_topic",
    "latest_checkpoint",
    "sign_checkpoint",
    "sign_head",
    "statement",
    "verify_with_keyring",
]

log = logging.getLogger("flagledger.checkpoints")

CHECKPOINT_TOPIC = "ledger.domain.checkpoints:CheckpointLog.CheckpointSigned"
CHECKPOINT_STREAM_PREFIX = "ledger.domain.checkpoints:CheckpointLog."


class _Configured(Protocol):
    """What :meth:`CheckpointSettings.from_config` reads of a node's configuration (``ledger.runtime.config``
    sits above this layer, so it is named by shape)."""

    @property
    def checkpoints(self) -> Mapping[str, Any]: ...


def statement(origin: str, tree_size: int, root: bytes, time: str, key_id: str) -> bytes:
    """The exact bytes an agency key signs for a checkpoint (text, so an auditor can read what was signed)."""
    return (
        f"flagledger checkpoint v1\norigin {origin}\ntree_size {tree_size}\nroot {root.hex()}\n"
        f"time {time}\nkey {key_id}\n"
    ).encode()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root: bytes
    time: str
    key_id: str
    signature: bytes
    prev_size: int = 0
    prev_root: bytes = EMPTY_ROOT
    consistency: tuple[bytes, ...] = ()

    def statement(self) -> bytes:
        return statement(self.origin, self.tree_size, self.root, self.time, self.key_id)

    @property
    def timestamp(self) -> datetime:
        try:
            return datetime.fromisoformat(self.time)
        except ValueError as exc:
            raise IntegrityError(f"checkpoint time {self.time!r} is not ISO 8601", code="bad_checkpoint") from exc

    def check_signature(self, public_hex: str) -> None:
        """Offline check against a given public key, which must also be the one the key id names."""
        try:
            raw = bytes.fromhex(public_hex)
        except ValueError as exc:
            raise IntegrityError("the public key is not hex", code="bad_checkpoint") from exc
        if key_id_for(self.origin, raw) != self.key_id:
            raise IntegrityError(
                f"public key does not match key id {self.key_id} of agency {self.origin}", code="bad_checkpoint"
            )
        try:
            public_key_from_hex(public_hex).verify(self.signature, self.statement())
        except (InvalidSignature, FlagLedgerError):
            raise IntegrityError(
                f"checkpoint signature by {self.key_id} does not verify", code="bad_checkpoint"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature.hex(),
            "statement": self.statement().decode(),
        }

    @classmethod
    def from_json(cls, d: Any) -> Checkpoint:
        try:
            size = d["tree_size"]
            if type(size) is not int or size < 0:
                raise ValueError("tree_size must be a non-negative integer")
            root = bytes.fromhex(d["root"])
            if len(root) != 32:
                raise ValueError("root must be 32 bytes")
            return cls(str(d["origin"]), size, root, str(d["time"]), str(d["key_id"]), bytes.fromhex(d["signature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed checkpoint: {exc}") from exc

    @classmethod
    def from_event(cls, origin: str, ev: Any) -> Checkpoint:
        """From a decoded ``CheckpointSigned`` (possibly a peer's: malformed fields are an integrity error)."""
        try:
            consistency = tuple(bytes.fromhex(h) for h in ev.consistency)
            cp = cls(
                origin,
                int(ev.tree_size),
                bytes.fromhex(ev.root),
                str(ev.time),
                str(ev.key_id),
                bytes.fromhex(ev.signature),
                int(ev.prev_size),
                bytes.fromhex(ev.prev_root),
                consistency,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise IntegrityError(f"malformed checkpoint event: {exc}", code="bad_checkpoint") from exc
        if len(cp.root) != 32 or len(cp.prev_root) != 32:
            raise IntegrityError("checkpoint root is not 32 bytes", code="bad_checkpoint")
        return cp


def verify_with_keyring(app: LedgerAccess, cp: Checkpoint) -> None:
    try:
        app.keyring.verify(cp.origin, cp.key_id, cp.timestamp, cp.statement(), cp.signature)
    except FlagLedgerError as exc:
        raise IntegrityError(f"checkpoint signature: {exc}", code="bad_checkpoint") from exc


# -- the log's leaves --------------------------------------------------------------------------------


class CheckpointSettings(Section):
    """When the node signs a tree head on its own: once ``every_events`` events were logged since the last one,
    or ``every_seconds`` after it if anything was (0 turns that trigger off). From config.json's ``checkpoints``
    section, overridden by ``FLAGLEDGER_CHECKPOINT_EVERY_EVENTS`` / ``FLAGLEDGER_CHECKPOINT_EVERY_SECONDS``."""

    model_config = section_config("FLAGLEDGER_CHECKPOINT_")
    section: ClassVar[str] = "checkpoints"

    every_events: int = Field(1000, ge=0)
    every_seconds: float = Field(60.0, ge=0)

    @classmethod
    def from_config(cls, config: _Configured, **options: Any) -> CheckpointSettings:
        return cls.load(config.checkpoints, **options)


class Checkpointer:
    """Signs checkpoints for a long-running node, reading only the events stored since its last call.

    The leaf hashes read so far stay in memory (32 bytes per event) so a periodic checkpoint does not
    re-read the whole log; a fresh instance (the CLI) reads it once.
    """

    def __init__(self, app: LedgerAccess) -> None:
        self.app = app
        self.leaves: list[bytes] = []
        self.position = 0
        self.content = 0  # leaves up to the last event that is not itself a checkpoint
        self.logged = 0  # events read that are not checkpoints
        self.signed_logged: int | None = None  # ``logged`` when sign_due last signed (None: not yet)
        self.signed_at = 0.0

    def sign_due(self, settings: CheckpointSettings, now: float) -> list[Checkpoint]:
        """Sign (every hosted agency) if ``settings`` say a tree head is due at ``now`` (monotonic seconds):
        at the first call, once ``every_events`` events were logged since the last call that signed, or
        ``every_seconds`` after it if anything was. An agency whose last checkpoint covers everything is
        skipped as in :meth:`sign`."""
        self.refresh()
        if self.signed_logged is not None:
            new = self.logged - self.signed_logged
            by_count = settings.every_events > 0 and new >= settings.every_events
            by_time = settings.every_seconds > 0 and new > 0 and now - self.signed_at >= settings.every_seconds
            if not (by_count or by_time):
                return []
        signed = self.sign()
        self.signed_logged, self.signed_at = self.logged, now
        return signed

    def refresh(self) -> None:
        for position, row, env in self.app.envelopes(start=self.position + 1):
            self.leaves.append(env.leaf_hash)
            self.position = position
            if not row.topic.startswith(CHECKPOINT_STREAM_PREFIX):
                self.content = len(self.leaves)
                self.logged += 1

    def sign(self, agencies: Iterable[str] | None = None, *, force: bool = False) -> list[Checkpoint]:
        """Sign a checkpoint for each of ``agencies`` (default: every hosted one) over the log as it is now.

        Skipped (unless ``force``) for an agency whose last checkpoint already covers every event other than
        checkpoints, so an idle node does not grow its log. Refuses (IntegrityError) to sign over a log that
        no longer extends the agency's previous checkpoint: that history was rewritten.
        """
        signed = []
        for agency in sorted(agencies if agencies is not None else self.app.hosted):
            self.refresh()
            cp = self._sign_one(agency, force)
            if cp is not None:
                signed.append(cp)
        return signed

    def _sign_one(self, agency: str, force: bool) -> Checkpoint | None:
        app = self.app
        signer = app.signers.get(agency)
        if signer is None:
            raise NotFoundError(f"agency {agency} is not hosted on this node")
        cplog = app.find(CheckpointLog, CheckpointLog.create_id(agency)) or CheckpointLog(agency=agency)
        prev_size, prev_root = cplog.tree_size, bytes.fromhex(cplog.root)
        leaves = self.leaves
        n = len(leaves)
        if not force and cplog.count and self.content <= prev_size:
            return None
        if n < prev_size:
            raise IntegrityError(
                f"the log holds {n} events but agency {agency}'s last checkpoint covers {prev_size}: "
                "events were deleted; run `flagledger audit verify`",
                code="truncated",
            )
        root = root_hash(leaves)
        proof = consistency_proof(leaves, prev_size)
        if not verify_consistency(prev_size, n, proof, prev_root, root):
            raise IntegrityError(
                f"the log no longer extends agency {agency}'s checkpoint of size {prev_size}: history was "
                "rewritten; not signing. Run `flagledger audit verify` to find the first bad event",
                code="checkpoint_mismatch",
            )
        time = app.clock().isoformat()
        signature = signer.sign(statement(agency, n, root, time, signer.key_id))
        cplog.sign(
            tree_size=n,
            root=root.hex(),
            time=time,
            key_id=signer.key_id,
            signature=signature.hex(),
            prev_size=prev_size,
            prev_root=prev_root.hex(),
            consistency=[h.hex() for h in proof],
        )
        app.save_as(agency, cplog)
        log.info("agency %s signed checkpoint: %d events, root %s", agency, n, root.hex())
        return Checkpoint(agency, n, root, time, signer.key_id, signature, prev_size, prev_root, tuple(proof))


def sign_checkpoint(app: LedgerAccess, agency: str | None = None, *, force: bool = False) -> list[Checkpoint]:
    """ "Checkpoint now": read the log once and sign for ``agency`` (default: every hosted agency)."""
    return Checkpointer(app).sign(None if agency is None else [agency], force=force)


def sign_head(app: LedgerAccess, agency: str | None = None) -> Checkpoint:
    """A tree head over the whole log as it is now, signed by ``agency`` (default: the first hosted one) and
    *not* recorded: to be kept outside this node (``audit head --out``), it covers every event, including the
    checkpoint just recorded — unlike that checkpoint, which covers only what precedes it. Same statement and
    JSON as a checkpoint, so ``audit verify --against`` reads either."""
    code = agency if agency is not None else sorted(app.hosted)[0]
    signer = app.signers.get(code)
    if signer is None:
        raise NotFoundError(f"agency {code} is not hosted on this node")
    tree = CompactRange()
    for _, _, env in app.envelopes():
        tree.append(env.leaf_hash)
    root, time = tree.root(), app.clock().isoformat()
    signature = signer.sign(statement(code, tree.size, root, time, signer.key_id))
    return Checkpoint(code, tree.size, root, time, signer.key_id, signature)


def latest_checkpoint(app: LedgerAccess, agency: str | None = None) -> Checkpoint:
    """The newest checkpoint signed by ``agency`` (default: the largest of any hosted agency)."""
    best: Checkpoint | None = None
    for code in [agency] if agency is not None else sorted(app.hosted):
        rows = app.recorder.select_events(CheckpointLog.create_id(code), desc=True, limit=1)
        if not rows or rows[0].topic != CHECKPOINT_TOPIC:
            continue
        env = app.signed_mapper.open(rows[0].state)
        app.signed_mapper.check_row(rows[0], env)
        app.signed_mapper.verify(env)
        cp = Checkpoint.from_event(env.header.origin, app.signed_mapper.decode(env))
        if best is None or cp.tree_size > best.tree_size:
            best = cp
    if best is None:
        raise NotFoundError("no checkpoint has been signed yet: run `flagledger audit checkpoint`")
    return best


def is_checkpoint_topic(topic: str) -> bool:
    return topic.startswith(CHECKPOINT_STREAM_PREFIX)
