"""``flagledger identity link``: an individual number replaced by a new one keeps its flags."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import option

identity = group("identity", "individual-number changes")


@command(identity, "link", help="link an old number to the new one")
@as_actor()
@option("--old", required=True)
@option("--new", required=True)
def link(actor: Actor, old: str, new: str) -> int:
    was, now = node().app.link_numbers(actor, old, new)
    out({"old": was, "new": now})
    return 0
