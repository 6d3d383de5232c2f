"""Signed transparency-log checkpoints of an agency, and the holds a node places on an agency whose
checkpoints fork.

A checkpoint commits the agency's node to the first ``tree_size`` events of its local log (see
:mod:`ledger.audit.checkpoints` for what a leaf is). Checkpoints are shared so that peers can check each new
one extends the last they hold; an :class:`AgencyHold` is local: it records why this node stopped
applying another agency's events and who lifted the hold.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate, stable_id
from ledger.errors import RuleViolation, StateConflict
from ledger.merkle import EMPTY_ROOT


class CheckpointLog(LedgerAggregate):
    """One per agency, written only by that agency's node; each ``CheckpointSigned`` extends the last."""

    SHARED = True

    @staticmethod
    def create_id(agency: str, **_: Any) -> UUID:
        # public on purpose: it names an agency, no person, and peers read it to check each new checkpoint
        return stable_id("checkpoints", agency)

    @event("Opened")
    def __init__(self, agency: str) -> None:
        self.agency = agency
        self.tree_size = 0
        self.root = EMPTY_ROOT.hex()
        self.count = 0

    def check_extends(self, tree_size: int, prev_size: int, prev_root: str) -> None:
        """A checkpoint must name this log's latest one as its predecessor and never shrink the tree."""
        if (prev_size, prev_root) != (self.tree_size, self.root):
            raise StateConflict(
                f"checkpoint names predecessor size {prev_size}, but the latest one is size {self.tree_size}"
            )
        if tree_size < self.tree_size:
            raise RuleViolation(f"a checkpoint cannot shrink the log from {self.tree_size} to {tree_size}")

    def sign(
        self,
        *,
        tree_size: int,
        root: str,
        time: str,
        key_id: str,
        signature: str,
        prev_size: int,
        prev_root: str,
        consistency: list[str],
    ) -> None:
        self.check_extends(tree_size, prev_size, prev_root)
        self._signed(
            tree_size=tree_size,
            root=root,
            time=time,
            key_id=key_id,
            signature=signature,
            prev_size=prev_size,
            prev_root=prev_root,
            consistency=consistency,
        )

    @event("CheckpointSigned")
    def _signed(
        self,
        tree_size: int,
        root: str,
        time: str,
        key_id: str,
        signature: str,
        prev_size: int,
        prev_root: str,
        consistency: list[str],
    ) -> None:
        self.tree_size = tree_size
        self.root = root
        self.count += 1


class AgencyHold(LedgerAggregate):
    """This node's hold on another agency's stream after a checkpoint fork (local: never published)."""

    @staticmethod
    def create_id(held: str, **_: Any) -> UUID:
        # public: it names the held agency, no person (local: never published)
        return stable_id("hold", held)

    @event("Opened")
    def __init__(self, agency: str, held: str) -> None:
        self.agency = agency
        self.held = held
        self.active = False
        self.reason = ""

    def place(self, reason: str, code: str) -> None:
        if self.active:
            raise StateConflict(f"agency {self.held} is already on hold")
        self._placed(reason=reason, code=code)

    @event("Placed")
    def _placed(self, reason: str, code: str) -> None:
        self.active = True
        self.reason = reason

    def lift(self, by: str, note: str) -> None:
        if not self.active:
            raise StateConflict(f"agency {self.held} is not on hold")
        self._lifted(by=by, note=note)

    @event("Lifted")
    def _lifted(self, by: str, note: str) -> None:
        self.active = False
