"""The local log as an RFC 6962 Merkle tree: which entry each position contributes, and the root at an instant.

Leaf ``i`` (0-based) is the ``i``-th event of the local log in notification order. Its leaf hash is
:func:`log_leaf`; keep every use of the definition behind that one function, so that the auditor's report and
the node's checkpoints cannot disagree on what a leaf is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.log.envelope import Envelope
from ledger.merkle import CompactRange

__all__ = ["PrefixRoot", "log_leaf"]


def log_leaf(env: Envelope) -> bytes:
    """The Merkle leaf hash of one log entry: ``SHA-256(0x00 ‖ signed header bytes)``.

    That is the envelope's own leaf hash — the value the stream's next event chains to (``prev``) and the
    sealed batch's signature covers — and the header commits to the payload through its digest, so the
    leaf pins the whole event without re-hashing payloads (which may later be crypto-shredded).
    """
    return env.leaf_hash


class PrefixRoot:
    """The Merkle root of the log as it stood at ``until``, fed the log in order, in O(log n) memory.

    The tree at ``until`` is taken to be the longest log prefix whose entries were all recorded at or before
    ``until``: the first entry recorded later was appended later, and so was everything after it. It is an
    upper bound for events ingested from other agencies (an entry recorded elsewhere before ``until`` may
    have been appended here after it) and exact for the node's own events.
    """

    def __init__(self, until: datetime) -> None:
        self.until = until.astimezone(UTC)
        self.tree = CompactRange()
        self.last_position = 0
        self.closed = False

    def add(self, position: int, env: Envelope) -> None:
        if self.closed:
            return
        if env.header.timestamp.astimezone(UTC) > self.until:
            self.closed = True
            return
        self.tree.append(log_leaf(env))
        self.last_position = position

    @property
    def size(self) -> int:
        return self.tree.size

    def root(self) -> bytes:
        return self.tree.root()
