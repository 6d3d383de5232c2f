"""``flagledger policy approvals``: the agency's policy."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import WHOLE, argument

policy = group("policy", "agency policy")


@command(policy, "approvals", help="set the approval chain length")
@as_actor()
@argument("count", type=WHOLE)
def approvals(actor: Actor, count: int) -> int:
    node().app.set_approval_policy(actor, count)
    out({"agency": actor.agency, "approvals_required": count})
    return 0
