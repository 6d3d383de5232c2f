"""``flagledger policy approvals``, ``policy totp``, ``policy answers`` and ``policy manual``: the agency's policy."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import WHOLE, OneOf, argument, choices, option
from ledger.domain.answers import ManualKind

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


@command(policy, "answers", help="when staff-made answers are released, and when held requests are due")
@as_actor()
@option("--batch-times", default=None, help="local release times, comma-separated (default 10:00,14:00,16:30)")
@option("--due-days", type=WHOLE, default=None, help="business days a held request is due in (default 5)")
def answers(actor: Actor, batch_times: str | None, due_days: int | None) -> int:
    times = [t.strip() for t in batch_times.split(",")] if batch_times is not None else None
    p = node().app.set_answer_policy(actor, batch_times=times, due_days=due_days)
    out({"agency": actor.agency, "batch_times": p.batch_times, "due_business_days": p.due_business_days})
    return 0


@command(policy, "manual", help="always answer an item by hand (a table 2 item, a procedure or an information kind)")
@as_actor()
@option("--kind", required=True, type=choices(ManualKind))
@option("--value", required=True, help="the item number, procedure or information kind")
@option("--remove", is_flag=True, default=False, help="answer it automatically again")
def manual(actor: Actor, kind: str, value: str, remove: bool) -> int:
    p = node().app.set_manual_item(actor, kind, value, manual=not remove)
    out({"agency": actor.agency, "manual": p.manual})
    return 0
