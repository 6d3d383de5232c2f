"""``flagledger retention due``: which records' retention ended (ledger.audit.retention, docs/retention.md).

A listing only: counts per kind and the subjects' pseudonyms. Nothing is erased (erasure is not built yet)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import DAY, option

retention = group("retention", "retention periods per record kind, and what is due for erasure")


@command(retention, "due", help="list what is due for erasure (counts and pseudonyms; nothing is erased)")
@as_actor()
@option("--as-of", "as_of", type=DAY, default=None, help="the day to judge on (default: today, UTC)")
@option("--json", "json_", is_flag=True, help="one line of JSON instead of text")
def due(actor: Actor, as_of: date | None, json_: bool) -> int:
    from ledger.audit.retention import retention_due

    day = as_of or datetime.now(UTC).date()
    kinds = retention_due(node(), actor, day)
    if json_:
        out({"agency": actor.agency, "as_of": day.isoformat(), "erased": 0, "kinds": [asdict(k) for k in kinds]})
        return 0
    print(f"retention due at {actor.agency} on {day.isoformat()} (a listing: nothing is erased)")
    for k in kinds:
        print(f"  {k.kind:<10} {k.count:>6} due  ({k.years} years from {k.starts})")
        for subject in k.subjects:
            print(f"    {subject}")
    return 0
