"""CheckpointLog and AgencyHold on their own: checkpoints only extend, holds are placed and lifted once."""

from __future__ import annotations

import pytest

from ledger.domain.checkpoints import AgencyHold, CheckpointLog
from ledger.errors import RuleViolation, StateConflict
from ledger.merkle import EMPTY_ROOT
from tests.support.domain import A, B, emitted

C = "ledger.domain.checkpoints:"
ROOT1, ROOT2 = "11" * 32, "22" * 32
SIG = "ab" * 64
KEY = f"{A}:0123456789abcdef"
T = "2026-11-25T10:00:00+00:00"


def sign(log: CheckpointLog, size: int, root: str, prev_size: int, prev_root: str) -> None:
    log.sign(
        tree_size=size,
        root=root,
        time=T,
        key_id=KEY,
        signature=SIG,
        prev_size=prev_size,
        prev_root=prev_root,
        consistency=[],
    )


def test_each_checkpoint_names_the_latest_as_predecessor_and_never_shrinks() -> None:
    """Threat: the broker operator / network or a compromised node presenting a forked history — a
    checkpoint that skips or rewrites its predecessor, or shrinks the log, is refused before it is signed."""
    log = CheckpointLog(agency=A)
    assert log.id == CheckpointLog.create_id(A) and (log.tree_size, log.root) == (0, EMPTY_ROOT.hex())
    sign(log, 5, ROOT1, 0, EMPTY_ROOT.hex())
    with pytest.raises(StateConflict, match="predecessor"):
        sign(log, 9, ROOT2, 0, EMPTY_ROOT.hex())  # names a checkpoint that is no longer the latest
    with pytest.raises(StateConflict, match="predecessor"):
        sign(log, 9, ROOT2, 5, ROOT2)  # the right size, another root: a fork
    with pytest.raises(RuleViolation, match="shrink"):
        sign(log, 4, ROOT2, 5, ROOT1)
    sign(log, 5, ROOT1, 5, ROOT1)  # nothing appended since: the same head again is allowed
    sign(log, 9, ROOT2, 5, ROOT1)
    assert (log.tree_size, log.root, log.count) == (9, ROOT2, 3)
    assert emitted(log) == [C + "CheckpointLog.Opened"] + [C + "CheckpointLog.CheckpointSigned"] * 3
    assert CheckpointLog.SHARED


def test_a_hold_is_placed_and_lifted_once_each() -> None:
    """Threat: a peer agency whose checkpoints fork — its events stop applying until a person lifts the hold."""
    hold = AgencyHold(agency=A, held=B)
    assert hold.id == AgencyHold.create_id(B) and not hold.active
    with pytest.raises(StateConflict, match="not on hold"):
        hold.lift(f"{A}/admin", "nothing to lift")
    hold.place("checkpoint fork at size 9", "checkpoint_fork")
    with pytest.raises(StateConflict, match="already on hold"):
        hold.place("again", "checkpoint_fork")
    assert hold.active and hold.reason == "checkpoint fork at size 9"
    hold.lift(f"{A}/admin", "B restored from backup and re-signed")
    assert not hold.active and AgencyHold.SHARED is False
    assert emitted(hold) == [C + "AgencyHold.Opened", C + "AgencyHold.Placed", C + "AgencyHold.Lifted"]
