"""``flagledger policy approvals`` and ``policy totp``: the agency's policy."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import WHOLE, OneOf, argument

policy = group("policy", "agency policy")


@command(policy, "approvals", help="set the approval chain length")
@as_actor()
@argument("count", type=WHOLE)
def approvals(actor: Actor, count: int) -> int:
    node().app.set_approval_policy(actor, count)
    out({"agency": actor.agency, "approvals_required": count})
    return 0


@command(policy, "totp", help="allow (or withdraw) one-time codes as a console second factor at the agency")
@as_actor()
@argument("state", type=OneOf(["allow", "withdraw"]))
def totp(actor: Actor, state: str) -> int:
    node().app.set_totp_allowed(actor, state == "allow")
    out({"agency": actor.agency, "one_time_codes": state == "allow"})
    return 0
