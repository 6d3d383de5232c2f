"""What ``audit verify`` reports: the first bad event (:class:`Finding`) and the counts (:class:`VerifyReport`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding", "VerifyReport"]


@dataclass(frozen=True)
class Finding:
    position: int
    stream: str
    version: int
    topic: str
    reason: str
    code: str
    index: int | None = None  # leaf index in the log's tree, when a check of the whole log found it

    def __str__(self) -> str:
        if not self.topic:  # a position with no event (deleted), or a problem of the log as a whole
            return f"position {self.position}: {self.reason}"
        return (
            f"position {self.position} ({self.topic} v{self.version} of stream {self.stream}): {self.reason}"
        )


@dataclass
class VerifyReport:
    events: int = 0
    streams: int = 0
    batches: int = 0
    first_bad: Finding | None = None
    checkpoints: int = 0
    heads_spilled: int = 0  # stream heads written to the temporary table (memory bound reached)
    tree_size: int = 0  # leaves of the log's tree rebuilt (every event read, in order)
    own_batches_checked: int = 0  # events of this node's batches whose signed log head matched
    v1_events: int = 0  # this node's events in envelope v1 (no log head: only checkpoints cover them)

    @property
    def ok(self) -> bool:
        return self.first_bad is None
