"""The local log's head — its size, RFC 6962 root and compact-range frontier — kept beside the events.

Every batch the node seals commits to the log just before it (:func:`ledger.log.envelope.batch_message`), and the
log grows from several processes at once (the API server, CLI commands, the consumer; on SQLite and on
PostgreSQL). So the head is read and advanced by the recorders (:mod:`ledger.log.sqlite_recorder`,
:mod:`ledger.log.pg_recorder`) *inside the insert transaction, under the store's write lock*: the head a batch
signs is exactly the log before it, whoever else is writing. The frontier (one hash per set bit of the size)
is all that appending needs, so a batch costs one small row read and one small row write, and ingested
events — stored with their origin's signature — advance the head the same way.

A batch to be sealed reaches the recorder as a :class:`PendingBatch` (keyword ``batch``): its events are
enveloped and hashed before the lock is taken; only the signature and the envelope bytes are made under it.
Any other row inserted (ingest) gets its leaf from ``leaves=`` or from the recorder's ``leaf_of`` (the
mapper's: decrypt, hash the signed header).

The row is not evidence: anyone with write access to the database can rewrite it. ``audit verify`` recomputes
the tree from the events and only uses the row as a tripwire (a tail deleted without fixing the row); what
cannot be forged without the key is the chain of signed heads in the batches and the checkpoints peers hold.
A log with events but no head row was written before envelope v2 (or the row was deleted): nothing more is
appended to it (see docs/tamper-evidence.md, "a fresh start").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import StoredEvent

from ledger.errors import Code, IntegrityError
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange

__all__ = ["LogHead", "PendingBatch", "head_missing", "plain_leaf", "rows_to_insert"]

_sha256 = hashlib.sha256


class PendingBatch(Protocol):
    """A batch enveloped and hashed, waiting for the log head it will sign (see :meth:`SignedMapper.prepare`)."""

    leaves: Sequence[bytes]

    def seal(self, log_size: int, log_root: bytes) -> list[StoredEvent]:
        """The stored events, signed over the batch and the log of ``log_size`` leaves with ``log_root``."""
        ...


@dataclass(frozen=True)
class LogHead:
    size: int
    root: bytes
    frontier: tuple[bytes, ...]

    @classmethod
    def empty(cls) -> LogHead:
        return cls(0, EMPTY_ROOT, ())

    @classmethod
    def from_row(cls, size: Any, root: Any, frontier: Any) -> LogHead:
        """The head as stored; refused (IntegrityError ``head_corrupt``) unless its parts agree."""
        try:
            blob = bytes(frontier)
            hashes = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
            tree = CompactRange.from_frontier(int(size), hashes)
            ok = bytes(root) == tree.root()
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise IntegrityError(
                "the log head row does not agree with itself (edited?): nothing was recorded. Run "
                "`flagledger audit verify`",
                code=Code.HEAD_CORRUPT,
            )
        return cls(int(size), bytes(root), tuple(hashes))

    def extend(self, leaves: Sequence[bytes]) -> LogHead:
        """The head after ``leaves`` (32-byte leaf hashes) are appended: :class:`CompactRange`'s carries, inlined
        (once per event of every batch saved or ingested; figure "signed append")."""
        size = self.size
        stack = list(self.frontier)  # subtree roots, largest first; their sizes are the set bits of ``size``
        for leaf in leaves:
            if len(leaf) != HASH_SIZE:
                raise ValueError("a log leaf is 32 bytes")
            h, n = leaf, size
            while n & 1:  # merge equal perfect subtrees, like a carry in binary addition
                h = _sha256(b"\x01" + stack.pop() + h).digest()
                n >>= 1
            stack.append(h)
            size += 1
        root = stack[-1] if stack else EMPTY_ROOT
        for left in reversed(stack[:-1]):
            root = _sha256(b"\x01" + left + root).digest()
        return LogHead(size, root, tuple(stack))

    def frontier_bytes(self) -> bytes:
        return b"".join(self.frontier)


def head_missing() -> IntegrityError:
    return IntegrityError(
        "this log has events but no log head row: it was written before envelope v2 (or the row was deleted). "
        "It can be checked with `flagledger audit verify` but nothing more is appended to it; start a fresh "
        "data directory (see docs/tamper-evidence.md)",
        code=Code.HEAD_MISSING,
    )


def plain_leaf(state: bytes) -> bytes:
    """The log leaf of a stored envelope kept unencrypted: ``SHA-256(0x00 ‖ header)``."""
    from ledger.log.envelope import Envelope

    return Envelope.from_bytes(state).leaf_hash


def rows_to_insert(
    head: LogHead, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any], leaf_of: Callable[[bytes], bytes]
) -> tuple[Sequence[StoredEvent], LogHead]:
    """The rows to insert after ``head`` and the head after them: a pending batch sealed now, else the rows
    given, with leaves from ``leaves=`` or ``leaf_of``."""
    batch: PendingBatch | None = kwargs.get("batch")
    if batch is not None:
        rows: Sequence[StoredEvent] = batch.seal(head.size, head.root)
        leaves = batch.leaves
    else:
        rows = stored_events
        given = kwargs.get("leaves")
        leaves = list(given) if given is not None else [leaf_of(e.state) for e in rows]
    if len(leaves) != len(rows):
        raise ValueError(f"{len(rows)} rows to insert but {len(leaves)} log leaves")
    return rows, head.extend(leaves)
