"""The hub's flag map (ledger.linkage.flag_state) rebuilt from the flag changes it filed (issue #20).

The map is derived state: every leaf follows from ``hub_flag_changes`` in sequence order and the number-change
links of the code map, so the hub rebuilds it at start (or after a crash) rather than keeping it, and the root it
signs can be recomputed by anyone holding a copy of the hub's database — an auditor checking a signed head.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.hub.links import joined
from ledger.hub.tables import hub_flag_changes
from ledger.linkage.codes import CodeMap, persons_of
from ledger.linkage.flag_map import map_key
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.storage import storage_error

__all__ = ["load_flag_map"]


def load_flag_map(
    engine: Engine,
    codes: CodeMap,
    key_of: Callable[[str], bytes] = map_key,
    *,
    into: HubFlagMap | None = None,
    after: int = 0,
) -> tuple[HubFlagMap, int]:
    """Fold the flag changes filed after sequence ``after`` into ``into`` (a new map if None); returns the map
    and the last sequence folded. A number change linked since ``into`` was built needs ``relink`` of either
    person id (a full rebuild needs nothing: the chains are read as they are now)."""
    flags = into or HubFlagMap(
        chain=lambda person: persons_of(codes, person),
        key_of=key_of,
        code_of=lambda person, holder: codes.codes(person).get(holder, ""),
        cover=lambda person: joined(engine, person),  # a wrong link's undo keeps what it covered
    )
    f = hub_flag_changes.c
    stmt = select(f.seq, f.person, f.holder, f.flag, f.action).where(f.seq > after).order_by(f.seq)
    last = after
    try:
        with engine.connect() as conn:
            for seq, person, holder, flag, action in conn.execute(stmt):
                flags.apply(FlagChange(int(seq), str(person), str(holder), str(flag), action))
                last = int(seq)
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's flag changes", exc) from exc
    return flags, last
