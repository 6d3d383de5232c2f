"""What the checkpoints give ``audit verify``: the checkpoint events read first (one indexed pass), each
checked on its own (signature, consistency with the last of its agency), and their roots for the walk over the
whole log to compare (:class:`ledger.log.check.LogCheck`). Signing them: :mod:`ledger.app.checkpoints`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.app.checkpoints import CHECKPOINT_TOPIC, Checkpoint, verify_with_keyring
from ledger.app.holds import check_extends
from ledger.errors import FlagLedgerError, InputError
from ledger.log.check import TreeHead
from ledger.log.findings import Finding

if TYPE_CHECKING:
    from ledger.app import FlagLedger

__all__ = ["CheckpointHeads", "collect_checkpoints"]


@dataclass
class CheckpointHeads:
    """What the checkpoints give ``audit verify``'s check of the whole log (:class:`ledger.log.check.LogCheck`)."""

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
                verify_with_keyring(app, cp)
                check_extends(last.get(cp.origin), cp)
            except FlagLedgerError as exc:
                stop = Finding(n.id, stream, version, n.topic, str(exc), exc.code)
                break
            count += 1
            last[cp.origin] = cp
            if cp.origin in app.hosted:
                head = TreeHead(
                    f"the checkpoint at position {n.id} (agency {cp.origin}, signed {cp.time})",
                    cp.tree_size,
                    cp.root,
                    n.id,
                )
                heads.append(head)
                covers[n.id] = head
        if len(rows) < page:
            break
        start = rows[-1].id + 1
    for t in trusted:
        if t.origin not in app.hosted:  # another node's log: comparing it with this one means nothing
            raise InputError(
                f"the tree head kept elsewhere is signed by agency {t.origin}, which this node does "
                "not host: pass a head of this node's own agencies"
            )
        verify_with_keyring(app, t)
        heads.append(
            TreeHead(f"the checkpoint kept elsewhere (agency {t.origin}, signed {t.time})", t.tree_size, t.root)
        )
    return CheckpointHeads(heads, covers, stop, count)
