"""What ``audit verify`` reports: the first bad event (:class:`Finding`) and the counts (:class:`VerifyReport`),
and the findings both its passes (one process or workers) name: a bad row, a broken chain, a foreign writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.domain.authority import foreign_writer_reason
from ledger.log.envelope import GENESIS

if TYPE_CHECKING:
    from ledger.log.rows import LogRow

__all__ = ["Finding", "VerifyReport", "chain_finding", "owner_finding", "row_finding"]


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
        return f"position {self.position} ({self.topic} v{self.version} of stream {self.stream}): {self.reason}"


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
    # staff signatures (ledger.audit.staff_signatures): every failure, and the events from before staff signing
    staff_findings: list[Finding] = field(default_factory=list)
    before_staff_signing: list[Finding] = field(default_factory=list)
    # flag events signed by certified people at an agency whose roster records no roles (opened before roles
    # travelled): who acted is proven, that they held the role is not — listed, never passed silently
    before_staff_roles: list[Finding] = field(default_factory=list)
    staff_signed: int = 0
    # events whose data key was destroyed (issue 22): (position, stream, version, topic, key ref); verified all
    # the same; and what the log records of each erasure (ledger.audit.erasures)
    erased: list[tuple[int, str, int, str, str]] = field(default_factory=list)
    erasures: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.first_bad is None


_NO_HEAD = (0, GENESIS)


def chain_finding(
    position: int, stream: str, version: int, topic: str, prev: str, head: tuple[int, str, str, str] | None
) -> Finding | None:
    """What is wrong with an event's link to its stream's ``head`` (latest verified version and hash), if anything."""
    expected_version, expected_prev = (head[0], head[1]) if head is not None else _NO_HEAD
    if version != expected_version + 1:
        return Finding(
            position,
            stream,
            version,
            topic,
            f"stream jumps from v{expected_version} to v{version}: an event is missing or out of order",
            "broken_chain",
        )
    if prev != expected_prev:
        return Finding(
            position,
            stream,
            version,
            topic,
            "does not chain to the previous event of its stream (edited, deleted or reordered)",
            "broken_chain",
        )
    return None


def owner_finding(position: int, stream: str, version: int, topic: str, origin: str, why: str) -> Finding:
    """An event its signer may not append to its stream
    (:func:`ledger.domain.authority.append_violation` says ``why``)."""
    return Finding(
        position, stream, version, topic, foreign_writer_reason(stream, version, topic, origin, why), "foreign_writer"
    )


def row_finding(n: LogRow, reason: str, code: str) -> Finding:
    """A row found bad on its own (signature, seal, payload), named by its position and stream."""
    position, stream, stored, version, topic, _ = n
    return Finding(position, stream if stream is not None else str(stored), version, topic, reason, code)
