"""Transparency-log checkpoints over the local event log: signing, verifying, proving, and fork holds.

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

**What they add** to the signed log heads every batch of this node carries (:mod:`ledger.log_check`): they are
shared, so a peer holds this node's latest head and checks each new one extends it (a fork holds the agency); a
copy kept elsewhere (a peer's, or :func:`sign_head`'s export) catches a cut tail that nothing inside the log
shows once the head row is rewritten. The node signs one every N events or T seconds (:class:`CheckpointSettings`,
:meth:`Checkpointer.sign_due`). ``audit verify`` reads the checkpoint events first (:func:`collect_checkpoints`)
and compares their roots in its one pass over the log.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature

from ledger.domain.bounds import NOTE, fit_text
from ledger.domain.checkpoints import AgencyHold, CheckpointLog
from ledger.envelope import Envelope
from ledger.errors import (
    CheckpointFork,
    Code,
    ConfigurationError,
    FlagLedgerError,
    InputError,
    IntegrityError,
    NotFoundError,
    StateConflict,
)
from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.signing import key_id_for, public_key_from_hex

if TYPE_CHECKING:
    from ledger.app import Actor, FlagLedger
    from ledger.audit_types import Finding
    from ledger.config import NodeConfig
    from ledger.log_check import TreeHead

__all__ = [
    "CHECKPOINT_TOPIC",
    "Checkpoint",
    "CheckpointFork",
    "CheckpointHeads",
    "CheckpointSettings",
    "Checkpointer",
    "build_proof",
    "check_incoming",
    "check_proof",
    "collect_checkpoints",
    "hold_agency",
    "hold_reason",
    "holds",
    "latest_checkpoint",
    "lift_hold",
    "proof_document",
    "sign_checkpoint",
    "statement",
]

log = logging.getLogger("flagledger.checkpoints")
alarm = logging.getLogger("flagledger.alarm")

CHECKPOINT_TOPIC = "ledger.domain.checkpoints:CheckpointLog.CheckpointSigned"
_CHECKPOINT_STREAM_PREFIX = "ledger.domain.checkpoints:CheckpointLog."
PROOF_FORMAT = "flagledger-inclusion-proof/v1"


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
            raise IntegrityError(f"checkpoint time {self.time!r} is not ISO 8601", code=Code.BAD_CHECKPOINT) from exc

    def check_signature(self, public_hex: str) -> None:
        """Offline check against a given public key, which must also be the one the key id names."""
        try:
            raw = bytes.fromhex(public_hex)
        except ValueError as exc:
            raise IntegrityError("the public key is not hex", code=Code.BAD_CHECKPOINT) from exc
        if key_id_for(self.origin, raw) != self.key_id:
            raise IntegrityError(
                f"public key does not match key id {self.key_id} of agency {self.origin}", code=Code.BAD_CHECKPOINT
            )
        try:
            public_key_from_hex(public_hex).verify(self.signature, self.statement())
        except (InvalidSignature, FlagLedgerError):
            raise IntegrityError(
                f"checkpoint signature by {self.key_id} does not verify", code=Code.BAD_CHECKPOINT
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
            raise IntegrityError(f"malformed checkpoint event: {exc}", code=Code.BAD_CHECKPOINT) from exc
        if len(cp.root) != 32 or len(cp.prev_root) != 32:
            raise IntegrityError("checkpoint root is not 32 bytes", code=Code.BAD_CHECKPOINT)
        return cp


def _verify_with_keyring(app: FlagLedger, cp: Checkpoint) -> None:
    try:
        app.keyring.verify(cp.origin, cp.key_id, cp.timestamp, cp.statement(), cp.signature)
    except FlagLedgerError as exc:
        raise IntegrityError(f"checkpoint signature: {exc}", code=Code.BAD_CHECKPOINT) from exc


# -- the log's leaves --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointSettings:
    """When the node signs a tree head on its own: once ``every_events`` events were logged since the last one,
    or ``every_seconds`` after it if anything was (0 turns that trigger off). From config.json's ``checkpoints``
    section, overridden by ``FLAGLEDGER_CHECKPOINT_EVERY_EVENTS`` / ``FLAGLEDGER_CHECKPOINT_EVERY_SECONDS``."""

    every_events: int = 1000
    every_seconds: float = 60.0

    @classmethod
    def from_config(cls, config: NodeConfig) -> CheckpointSettings:
        values: dict[str, Any] = dict(config.checkpoints)
        unknown = set(values) - {"every_events", "every_seconds"}
        if unknown:
            raise ConfigurationError(f"unknown checkpoints settings: {', '.join(sorted(unknown))}")
        for name in ("every_events", "every_seconds"):
            env = os.environ.get(f"FLAGLEDGER_CHECKPOINT_{name.upper()}")
            if env is not None:
                values[name] = env
        parsed: dict[str, Any] = {}
        for name, kind in (("every_events", int), ("every_seconds", float)):
            if name in values:
                try:
                    parsed[name] = kind(values[name])
                except (TypeError, ValueError):
                    raise ConfigurationError(f"checkpoints setting {name} is not a number") from None
                if not parsed[name] >= 0:
                    raise ConfigurationError(f"checkpoints setting {name} must be 0 (off) or more")
        return cls(**parsed)


class Checkpointer:
    """Signs checkpoints for a long-running node, reading only the events stored since its last call.

    The leaf hashes read so far stay in memory (32 bytes per event) so a periodic checkpoint does not
    re-read the whole log; a fresh instance (the CLI) reads it once.
    """

    def __init__(self, app: FlagLedger) -> None:
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
            if not row.topic.startswith(_CHECKPOINT_STREAM_PREFIX):
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
                code=Code.TRUNCATED,
            )
        root = root_hash(leaves)
        proof = consistency_proof(leaves, prev_size)
        if not verify_consistency(prev_size, n, proof, prev_root, root):
            raise IntegrityError(
                f"the log no longer extends agency {agency}'s checkpoint of size {prev_size}: history was "
                "rewritten; not signing. Run `flagledger audit verify` to find the first bad event",
                code=Code.CHECKPOINT_MISMATCH,
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


def sign_checkpoint(app: FlagLedger, agency: str | None = None, *, force: bool = False) -> list[Checkpoint]:
    """"Checkpoint now": read the log once and sign for ``agency`` (default: every hosted agency)."""
    return Checkpointer(app).sign(None if agency is None else [agency], force=force)


def sign_head(app: FlagLedger, agency: str | None = None) -> Checkpoint:
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


def latest_checkpoint(app: FlagLedger, agency: str | None = None) -> Checkpoint:
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


# -- audit verify --------------------------------------------------------------------------------------


@dataclass
class CheckpointHeads:
    """What the checkpoints give ``audit verify``'s check of the whole log (:class:`ledger.log_check.LogCheck`)."""

    heads: list[TreeHead]  # this node's checkpoints in the log and the trusted ones: roots to compare
    covers: dict[int, TreeHead]  # this node's checkpoint events by position (each covers only what precedes it)
    stop: Finding | None  # the first checkpoint event bad on its own (signature, consistency with the last)
    count: int  # checkpoint events read before it


def collect_checkpoints(app: FlagLedger, trusted: Sequence[Checkpoint] = (), page: int = 1000) -> CheckpointHeads:
    """Read the checkpoint events alone (one indexed pass) and the ``trusted`` ones kept outside this log.

    Each checkpoint's signature (key valid at its time) and its consistency proof from the previous checkpoint
    of the same agency are checked here; the first that fails is returned as ``stop`` for the walk over the log
    to name when it reaches it (unless something before it is bad). The roots of this node's own checkpoints
    and of ``trusted`` ones are compared by the walk as the rebuilt tree reaches their sizes. A trusted
    checkpoint whose signature does not verify is refused at once (IntegrityError ``bad_checkpoint``).
    """
    from ledger.audit_types import Finding
    from ledger.log_check import TreeHead

    heads: list[TreeHead] = []
    covers: dict[int, TreeHead] = {}
    stop: Finding | None = None
    count = 0
    last: dict[str, Checkpoint] = {}
    start = 1
    while stop is None:
        rows = app.recorder.select_notifications(start=start, limit=page, topics=[CHECKPOINT_TOPIC])
        for n in rows:
            stream, version = str(n.originator_id), n.originator_version
            try:
                env = app.signed_mapper.open(n.state)
                cp = Checkpoint.from_event(env.header.origin, app.signed_mapper.decode(env))
                _verify_with_keyring(app, cp)
                _check_extends(last.get(cp.origin), cp)
            except FlagLedgerError as exc:
                stop = Finding(n.id, stream, version, n.topic, str(exc), exc.code)
                break
            count += 1
            last[cp.origin] = cp
            if cp.origin in app.hosted:
                head = TreeHead(f"the checkpoint at position {n.id} (agency {cp.origin}, signed {cp.time})",
                                cp.tree_size, cp.root, n.id)
                heads.append(head)
                covers[n.id] = head
        if len(rows) < page:
            break
        start = rows[-1].id + 1
    for t in trusted:
        if t.origin not in app.hosted:  # another node's log: comparing it with this one means nothing
            raise InputError(f"the tree head kept elsewhere is signed by agency {t.origin}, which this node does "
                             "not host: pass a head of this node's own agencies")
        _verify_with_keyring(app, t)
        heads.append(TreeHead(f"the checkpoint kept elsewhere (agency {t.origin}, signed {t.time})", t.tree_size,
                              t.root))
    return CheckpointHeads(heads, covers, stop, count)


def _check_extends(prev: Checkpoint | None, cp: Checkpoint) -> None:
    """``cp`` must name ``prev`` (the last checkpoint of its agency, or none) and prove it extends it."""
    held = (prev.tree_size, prev.root) if prev is not None else (0, EMPTY_ROOT)
    if (cp.prev_size, cp.prev_root) != held:
        raise CheckpointFork(
            f"agency {cp.origin}'s checkpoint of size {cp.tree_size} names a predecessor of size {cp.prev_size} "
            f"(root {cp.prev_root.hex()[:16]}…), but the last one held is size {held[0]} "
            f"(root {held[1].hex()[:16]}…): a fork"
        )
    if not verify_consistency(cp.prev_size, cp.tree_size, list(cp.consistency), cp.prev_root, cp.root):
        raise CheckpointFork(
            f"agency {cp.origin}'s checkpoint of size {cp.tree_size} (root {cp.root.hex()[:16]}…) is not "
            f"consistent with its checkpoint of size {cp.prev_size}: a fork or rewritten history"
        )


# -- exchange: checking a peer's checkpoint, holding its stream -----------------------------------------


def check_incoming(app: FlagLedger, env: Envelope, event: Any) -> None:
    """Check a peer's ``CheckpointSigned`` before it is appended: signed by the agency's key and consistent
    with the last checkpoint this node holds from that agency (the previous event of the same stream, which
    stream order guarantees is already here). Raises :class:`CheckpointFork` or IntegrityError."""
    h = env.header
    cp = Checkpoint.from_event(h.origin, event)
    _verify_with_keyring(app, cp)
    prev: Checkpoint | None = None
    rows = app.recorder.select_events(UUID(h.stream), lte=h.version - 1, desc=True, limit=1)
    if rows and rows[0].topic == CHECKPOINT_TOPIC:
        stored = app.signed_mapper.open(rows[0].state)
        prev = Checkpoint.from_event(stored.header.origin, app.signed_mapper.decode(stored))
    _check_extends(prev, cp)


def is_checkpoint_topic(topic: str) -> bool:
    return topic.startswith(_CHECKPOINT_STREAM_PREFIX)


def _hold_row_topic(app: FlagLedger, held: str) -> str | None:
    rows = app.recorder.select_events(AgencyHold.create_id(held), desc=True, limit=1)
    return rows[0].topic if rows else None


def hold_reason(app: FlagLedger, agency: str) -> str | None:
    """Why this node holds ``agency``'s stream, or None. One indexed read (no cache: an operator may lift
    the hold from another process)."""
    topic = _hold_row_topic(app, agency)
    if topic is None or not topic.endswith(".Placed"):
        return None
    hold = app.load(AgencyHold, AgencyHold.create_id(agency), "agency hold")
    return hold.reason


def hold_agency(app: FlagLedger, held: str, reason: str, code: str) -> None:
    """Record (as a local ledger event) that ``held``'s events are no longer applied, and raise the alarm."""
    alarm.error("ALARM: agency %s is on hold: %s", held, reason)
    recorder = sorted(app.hosted)[0]  # any hosted agency may record the node's own decision
    hold = app.find(AgencyHold, AgencyHold.create_id(held)) or AgencyHold(agency=recorder, held=held)
    if hold.active:
        return
    hold.place(fit_text(reason, NOTE), code)  # the reason may quote a peer's fields: never too long to record
    app.save_as(hold.agency, hold)


def lift_hold(app: FlagLedger, actor: Actor, held: str, note: str) -> None:
    """An administrator lifts a hold after resolving the fork out of band; parked events can then be replayed."""
    from ledger.domain.types import Action

    app.authorise(actor, Action.ADMINISTER)
    if not note.strip():
        raise InputError("say what was checked before lifting the hold (--note)")
    hold = app.find(AgencyHold, AgencyHold.create_id(held))
    if hold is None or not hold.active:
        raise StateConflict("that agency is not on hold")
    hold.lift(by=str(actor), note=note)
    app.save_as(hold.agency, hold)


def holds(app: FlagLedger) -> list[dict[str, Any]]:
    """Every agency currently held, with the recorded reason."""
    out: list[dict[str, Any]] = []
    for n in _select_topic(app, "ledger.domain.checkpoints:AgencyHold.Placed"):
        hold = app.load(AgencyHold, n.originator_id, "agency hold")
        if hold.active and all(o["agency"] != hold.held for o in out):
            out.append({"agency": hold.held, "reason": hold.reason, "position": n.id})
    return out


def _select_topic(app: FlagLedger, topic: str) -> list[Any]:
    out: list[Any] = []
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=1000, topics=[topic])
        out.extend(rows)
        if len(rows) < 1000:
            return out
        start = rows[-1].id + 1


# -- inclusion proofs -------------------------------------------------------------------------------------


def build_proof(
    app: FlagLedger, *, event_id: str | None = None, position: int | None = None, agency: str | None = None
) -> dict[str, Any]:
    """An inclusion proof of one event (by envelope event id or log position) against the latest checkpoint."""
    if (event_id is None) == (position is None):
        raise InputError("name the event by its event id or by its log position")
    cp = latest_checkpoint(app, agency)
    leaves: list[bytes] = []
    index: int | None = None
    header = b""
    for pos, _, env in app.envelopes():
        if len(leaves) == cp.tree_size:
            break
        if (event_id is not None and env.header.event_id == event_id.replace("-", "")) or pos == position:
            index, header = len(leaves), env.header_bytes
        leaves.append(env.leaf_hash)
    if len(leaves) < cp.tree_size:
        raise IntegrityError(
            f"the log holds {len(leaves)} events but the checkpoint covers {cp.tree_size}: "
            "run `flagledger audit verify`",
            code=Code.TRUNCATED,
        )
    if index is None:
        raise NotFoundError(
            f"event {event_id or position} is not among the {cp.tree_size} events of the latest checkpoint; "
            "if it is newer, run `flagledger audit checkpoint` first"
        )
    if root_hash(leaves) != cp.root:
        raise IntegrityError(
            "the log no longer matches the latest checkpoint: run `flagledger audit verify`",
            code=Code.CHECKPOINT_MISMATCH,
        )
    return proof_document(cp, leaves, index, header, app.keyring.get(cp.key_id).public_hex)


def proof_document(
    cp: Checkpoint, leaves: Sequence[bytes], index: int, header: bytes, public_hex: str
) -> dict[str, Any]:
    """The JSON an auditor files: the event header, its inclusion path, the signed checkpoint and its key."""
    return {
        "format": PROOF_FORMAT,
        "event_id": json.loads(header)["id"],
        "header": header.decode(),
        "leaf_index": index,
        "leaf_hash": leaf_hash(header).hex(),
        "tree_size": cp.tree_size,
        "proof": [h.hex() for h in inclusion_proof(leaves, index)],
        "root": cp.root.hex(),
        "checkpoint": cp.to_json(),
        "public_key": public_hex,
    }


def check_proof(doc: Any, expected_public_key: str | None = None) -> dict[str, Any]:
    """Verify a proof document offline: the checkpoint's signature, then the event's inclusion under its root.

    Raises IntegrityError (code ``bad_proof`` / ``bad_checkpoint``) naming what failed; InputError if malformed.
    """
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise InputError(f"not a flagledger inclusion proof (expected format {PROOF_FORMAT})")
    cp = Checkpoint.from_json(doc.get("checkpoint"))
    public = doc.get("public_key")
    if not isinstance(public, str):
        raise InputError("the proof carries no public_key")
    if expected_public_key is not None and public.lower() != expected_public_key.lower():
        raise IntegrityError("the proof is signed by a different key than the one you trust", code=Code.BAD_CHECKPOINT)
    cp.check_signature(public)
    try:
        index, size = doc["leaf_index"], doc["tree_size"]
        leaf = bytes.fromhex(doc["leaf_hash"])
        root = bytes.fromhex(doc["root"])
        path = [bytes.fromhex(h) for h in doc["proof"]]
        header = doc.get("header")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed proof: {exc}") from exc
    if size != cp.tree_size or root != cp.root:
        raise IntegrityError("the proof's tree size or root is not the signed checkpoint's", code=Code.BAD_PROOF)
    if header is not None:
        if not isinstance(header, str) or leaf_hash(header.encode()) != leaf:
            raise IntegrityError("the event header does not hash to the leaf hash", code=Code.BAD_PROOF)
        try:
            if json.loads(header).get("id") != doc.get("event_id"):
                raise IntegrityError("the event id is not the header's", code=Code.BAD_PROOF)
        except ValueError as exc:
            raise IntegrityError("the event header is not JSON", code=Code.BAD_PROOF) from exc
    if not verify_inclusion(leaf, index, size, path, root):
        raise IntegrityError(
            f"the inclusion proof does not lead from leaf {index} to the checkpoint root", code=Code.BAD_PROOF
        )
    return {
        "ok": True,
        "event_id": doc.get("event_id"),
        "leaf_index": index,
        "tree_size": size,
        "root": root.hex(),
        "origin": cp.origin,
        "key_id": cp.key_id,
        "checkpoint_time": cp.time,
        "note": "the signing key must be one you trust (compare key_id/public_key with the agency's, out of band)",
    }
