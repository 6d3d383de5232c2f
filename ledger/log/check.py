"""``audit verify``'s check of the log as a whole: the tree rebuilt from every event against every signed head.

The per-stream chains (:mod:`ledger.audit.verify`) see an edited event and a hole in the middle of a stream, but not
a deleted last event of a stream, a deleted single-event stream, rows of different streams swapped, or a
truncated log. Those change the local log's RFC 6962 tree (:mod:`ledger.log.tree`), and the tree is signed
over and over:

* **every batch this node sealed** (origin hosted here, envelope v2) carries the size and root of the log just
  before it, and each of its events its index in the batch: the batch's events must sit at leaves
  ``log_size … log_size + size − 1`` of the rebuilt tree, one after the other, after exactly the signed log;
* **checkpoints** (``CheckpointSigned``, signed automatically by the node every N events or T seconds) name
  a size and root; those of this node's agencies in the log, and ones kept elsewhere (``--against``: exported,
  or a peer's copy) are compared when the rebuilt tree reaches their size; one covering more than the log holds
  means its tail was cut;
* the **log head row** the recorders keep (:mod:`ledger.log.head`) is compared the same way — a tripwire only,
  as anyone with write access can rewrite it.

**Which position is named.** Each own batch that matches *vouches* for every leaf up to its last event. When
a signed head no longer matches, the tampering lies after the last vouched leaf and at or before where it was
noticed; the finding names the first position missing from the log's numbering after the vouched leaves (a
deleted row leaves a hole in the positions: exact for deletions, and for a cut tail it is the position after
the last event), else the first event not vouched for (a lower bound: for swapped or moved rows the signatures
pin down only that range), and the reason gives the range. On PostgreSQL a rolled-back insert also leaves a
hole in the positions, so there the hole named is the likeliest, not the certain, first bad position.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ledger.errors import Code
from ledger.log.findings import Finding
from ledger.log.head import LogHead
from ledger.merkle import CompactRange

__all__ = ["LogCheck", "TreeHead"]


@dataclass(frozen=True)
class TreeHead:
    """A signed (or recorded) claim about the log's first ``size`` leaves, to compare with the rebuilt tree."""

    label: str
    size: int
    root: bytes
    position: int | None = None  # where it sits in this log (a checkpoint event), if it does


@dataclass
class _Batch:
    """An own batch whose first events were found in place: the rest must follow at once."""

    origin: str
    signature: bytes
    size: int
    next: int
    first: int  # its first event's position


@dataclass
class LogCheck:
    hosted: frozenset[str]
    heads: list[TreeHead] = field(default_factory=list)
    covers: dict[int, TreeHead] = field(default_factory=dict)  # own checkpoint events by position
    stop: Finding | None = None  # a checkpoint found bad on its own (ledger.audit.checkpoints), named when reached
    head_row: LogHead | None = None
    head_row_error: str | None = None  # the head row could not be read as a head (edited?)

    def __post_init__(self) -> None:
        self.tree = CompactRange()
        self.vouched = 0  # leaves vouched for by own batches in place
        self.vouched_position = 0
        self.last_position = 0
        self.gap: int | None = None  # first position missing from the numbering after the vouched leaves
        self.gap_index = 0  # the leaf index that position would have had
        # the first event after them: (position, stream, version, topic)
        self.unvouched: tuple[int, str, int, str] | None = None
        self.batch: _Batch | None = None
        self.v1_events = 0
        self.v2_own = 0
        by_size: dict[int, list[TreeHead]] = {}
        for h in self.heads:
            by_size.setdefault(h.size, []).append(h)
        if self.head_row is not None:
            by_size.setdefault(self.head_row.size, []).append(
                TreeHead(
                    "the log head row (a tripwire: anyone with write access can rewrite it)",
                    self.head_row.size,
                    self.head_row.root,
                )
            )
        self.by_size = by_size

    # -- per event --------------------------------------------------------------------------------------
    def see(self, position: int) -> None:
        """Note a position read from the log (before its checks: a hole before it is named by either)."""
        if position > self.last_position + 1 and self.gap is None:
            self.gap = self.last_position + 1
            self.gap_index = self.tree.size
        self.last_position = position

    def add(
        self,
        position: int,
        stream: str,
        version: int,
        topic: str,
        origin: str,
        leaf: bytes,
        leaf_index: int,
        size: int,
        log_size: int,
        log_root: bytes,
        signature: bytes,
    ) -> Finding | None:
        """Check one event that passed every per-event check and its chain link; append its leaf."""
        tree = self.tree
        own = origin in self.hosted
        b = self.batch
        if b is not None and not (own and signature == b.signature and leaf_index == b.next):
            if own and signature == b.signature and leaf_index < b.next:
                return self._named(
                    position,
                    "moved",
                    f"event {b.next} of the batch signed by {b.origin} at position "
                    f"{b.first} should be here, but its event {leaf_index} is: rows were moved",
                )
            gone = leaf_index - b.next if own and signature == b.signature else b.size - b.next
            return self._named(
                position,
                "missing",
                f"the batch signed by {b.origin} at position {b.first} has "
                f"{b.size} events, but its event {b.next} is not at position {position}: "
                f"{gone} of its events were deleted or moved away",
            )
        if own:
            if log_size < 0:
                if self.v2_own:
                    return self._here(
                        position,
                        stream,
                        version,
                        topic,
                        "downgraded",
                        "an event of this node in envelope v1 after envelope v2 ones: written outside flagledger",
                    )
                self.v1_events += 1
            else:
                if b is None:
                    if leaf_index != 0:
                        return self._named(
                            position,
                            "missing",
                            f"the event at position {position} is event "
                            f"{leaf_index} of a batch signed by {origin} whose first {leaf_index} "
                            "event(s) are not right before it: deleted or moved",
                        )
                    if log_size != tree.size or log_root != tree.root():
                        return self._mismatch(position, origin, log_size)
                    if size > 1:
                        self.batch = _Batch(origin, signature, size, 1, position)
                else:
                    b.next += 1
                    if b.next == size:
                        self.batch = None
                self.v2_own += 1
        if self.stop is not None and self.stop.position == position:
            # a checkpoint that does not extend its agency's last one held: the last one may have been deleted
            if self.stop.code == Code.CHECKPOINT_FORK and self.gap is not None:
                return self._named(position, "missing", f"{self.stop.reason} (at position {position})")
            return replace(self.stop, index=tree.size)
        cover = self.covers.get(position)
        if cover is not None and cover.size > tree.size:
            return self._here(
                position,
                stream,
                version,
                topic,
                "bad_checkpoint",
                f"{cover.label} covers {cover.size} events but only {tree.size} precede it",
            )
        tree.append(leaf)
        if own and log_size >= 0:
            self.vouched = tree.size
            self.vouched_position = position
            self.gap = None
            self.unvouched = None
        elif self.unvouched is None:
            self.unvouched = (position, stream, version, topic)
        heads = self.by_size.get(tree.size)
        if heads is not None:
            root = tree.root()
            for h in heads:
                if h.root != root:
                    return self._head_mismatch(h, position, stream, version, topic)
        return None

    def finish(self) -> Finding | None:
        """After the last event: the tail against an incomplete own batch, the heads and the head row."""
        tree = self.tree
        b = self.batch
        if b is not None:
            return self._tail(
                f"the log ends inside the batch signed by {b.origin} at position {b.first}: its last "
                f"{b.size - b.next} event(s) are missing"
            )
        beyond = [h for size, hs in self.by_size.items() if size > tree.size for h in hs]
        if beyond:
            h = max(beyond, key=lambda x: x.size)
            return self._tail(
                f"the log holds {tree.size} events but {h.label} covers {h.size}: "
                f"{h.size - tree.size} event(s) are missing"
            )
        # the row describes the log as a whole: named after its last event
        end = self.last_position + 1
        if self.head_row_error is not None:
            return Finding(end, "", 0, "", self.head_row_error, "head_corrupt", tree.size)
        if self.head_row is None and self.v2_own:
            return Finding(
                end,
                "",
                0,
                "",
                "the log head row is missing (deleted?): compare the log with a peer's or "
                "an exported tree head (`audit verify --against`)",
                "head_missing",
                tree.size,
            )
        return None

    # -- naming -----------------------------------------------------------------------------------------
    def _first_bad(self, here: int) -> tuple[int, str, int, str, int]:
        """(position, stream, version, topic, leaf index) to name: the first hole after the vouched leaves,
        else the first event not vouched for, else ``here``."""
        if self.gap is not None and self.gap <= here:
            return self.gap, "", 0, "", self.gap_index
        if self.unvouched is not None and self.unvouched[0] <= here:
            return (*self.unvouched, self.vouched)
        return here, "", 0, "", self.tree.size

    def _bound(self, here: int) -> str:
        vouched = (
            f"the first {self.vouched} events (to position {self.vouched_position}) are vouched for by this node's "
            "signed batches"
            if self.vouched
            else "no event before it is vouched for by this node's signed batches"
        )
        return f"; {vouched}, so the first bad position is after that and at or before {here}"

    def _named(self, here: int, code: str, reason: str) -> Finding:
        position, stream, version, topic, index = self._first_bad(here)
        if position != here or not topic:
            reason = f"{reason}{self._bound(here)}"
        if not topic and position != here:
            reason = f"position {position} is missing from the log: {reason}"
        return Finding(position, stream, version, topic, reason, code, index)

    def _tail(self, reason: str) -> Finding:
        """Events missing, noticed at the end: where the positions have a hole since the vouched-for events,
        there (deleted from the middle), else right after the last event (the tail was cut)."""
        if self.gap is not None:
            return Finding(
                self.gap,
                "",
                0,
                "",
                f"position {self.gap} is missing from the log: {reason}{self._bound(self.last_position)}",
                "missing",
                self.gap_index,
            )
        end = self.last_position + 1
        return Finding(
            end,
            "",
            0,
            "",
            f"{reason}: the log was cut after position {self.last_position} (a truncated log)",
            Code.TRUNCATED,
            self.tree.size,
        )

    def _here(self, position: int, stream: str, version: int, topic: str, code: str, reason: str) -> Finding:
        return Finding(position, stream, version, topic, reason, code, self.tree.size)

    def _mismatch(self, here: int, origin: str, log_size: int) -> Finding:
        found = self.tree.size
        if found < log_size:
            code, what = "missing", f"{log_size - found} event(s) before it were deleted or moved away"
        elif found > log_size:
            code, what = "moved", f"{found - log_size} event(s) before it were inserted or moved there"
        else:
            code, what = "moved", "the same number of events but not the same ones: replaced, reordered or moved"
        return self._named(
            here,
            code,
            f"expected log size {log_size} (and its root) before the batch at position "
            f"{here}, signed by {origin}; found {found}: {what}",
        )

    def _head_mismatch(self, h: TreeHead, here: int, stream: str, version: int, topic: str) -> Finding:
        reason = (
            f"the first {h.size} events no longer match {h.label}: an event at or before position {here} "
            "was deleted, inserted, reordered or edited"
        )
        if self.vouched >= h.size:
            # this node's own signed batches vouch for that prefix: the head is not one of this log
            where = h.position if h.position is not None else here
            return Finding(
                where,
                stream if h.position is None else "",
                version if h.position is None else 0,
                topic if h.position is None else "",
                f"{h.label} does not match the log, which this node's signed batches vouch for up to "
                f"position {self.vouched_position}: it signs another history (a fork)",
                "checkpoint_mismatch",
                h.size,
            )
        return self._named(here, "checkpoint_mismatch", reason)
