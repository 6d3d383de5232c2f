"""``flagledger demo --topology hub``'s last table: what each party stores about X, read from its own data
directory (every row of every SQLite database in it, every byte of its files), and what crossed the broker.

A row is "about X" when it holds any of X's identifiers in clear: an agency's code for X (as code or as the
node's subject), the portal's code for X, or the hub's person id for X. No party's files may hold X's or Z's
individual number: the demo fails if one does.
"""

from __future__ import annotations

from sqlalchemy import select

from ledger.cli.demo_hub_world import DIRS, Z_NUMBER, HubWorld, sqlite_rows, x_code
from ledger.cli.demo_tables import NAMES, SAFE, X_NUMBER, Y_NUMBER, A, B, C, D, Step, Table
from ledger.hub.tables import hub_codes
from ledger.linkage.codes import portal_code
from ledger.linkage.names import HUB, PORTAL
from ledger.runtime.linkage import subject_of

__all__ = ["who_stores_what", "x_identifiers"]


def x_identifiers(world: HubWorld) -> set[str]:
    """Every spelling of X any party could store: the agencies' codes and subjects, the portal's code, and the
    hub's person id (read from the hub's code map, as the hub's operator could)."""
    codes = {x_code(world.nodes[c], c) for c in (A, B, C, D)}
    found = codes | {subject_of(c) for c in codes} | {portal_code(world.portal_role.keys.secret, X_NUMBER)}
    with world.hub_store.engine.connect() as conn:
        found |= set(conn.execute(select(hub_codes.c.person).where(hub_codes.c.code.in_(codes))).scalars())
    return found


def who_stores_what(world: HubWorld, s: Step) -> None:
    ids = x_identifiers(world)
    numbers = [n.encode() for n in (X_NUMBER, Y_NUMBER, Z_NUMBER)]
    t = Table(
        "who stores what about X (each party's own directory)",
        ["party", "directory", "files", "database rows", "rows about X", "B named", "C named", "a number in its files"],
    )
    holders_named, new_named = {}, {}
    for party in (A, B, C, D, HUB, PORTAL):
        path = world.party_dir(party)
        files = [p for p in sorted(path.rglob("*")) if p.is_file()]
        rows = sqlite_rows(path)
        about = sum(1 for r in rows if any(i in r for i in ids))
        named_b = sum(1 for r in rows if f"'{B}'" in r)  # B as a whole column value (not digits inside an id)
        holders_named[party] = named_b
        new_named[party] = sum(1 for r in rows if f"'{C}'" in r)  # C: where X lives now
        blob = b"".join(p.read_bytes() for p in files)
        leaked = [n.decode() for n in numbers if n in blob]
        s.expect(not leaked, f"no individual number is in {DIRS[party]}/'s files")
        t.add(
            f"{NAMES.get(party, party)}" + (f" ({party})" if party in NAMES else ""),
            f"{DIRS[party]}/",
            f"{len(files)} ({sum(p.stat().st_size for p in files) // 1024} KiB)",
            str(len(rows)),
            str(about),
            str(named_b),
            str(new_named[party]),
            ", ".join(leaked) or "none",
            marks=["", "", "", "", "", "", "", "" if leaked else SAFE],
        )
    t.note = (
        "rows about X: rows holding an agency's, the portal's or the hub's code for X in clear (the agencies' "
        "event payloads are encrypted); B or C named: rows with B's or C's code as a value"
    )
    s.show(t)
    s.expect(all(holders_named[p] == 0 for p in (A, C, D, PORTAL)), "no row of A, C, D or the portal names B")
    s.expect(all(new_named[p] == 0 for p in (A, D, PORTAL)), "no row of A, D or the portal names C")
    b = Table("the broker: each inbox (the one object the parties share)", ["inbox", "messages", "sizes (bytes)"])
    for topic, messages in sorted(world.broker.topics.items()):
        sizes = sorted({len(m) for m in messages})
        b.add(topic, str(len(messages)), ", ".join(str(n) for n in sizes))
    b.note = "sealed messages, padded to buckets: a message's size says little of what it carries"
    s.show(b)
    s.expect(not any(n in m for ms in world.broker.topics.values() for m in ms for n in numbers),
             "no individual number crossed the broker in clear")  # fmt: skip
