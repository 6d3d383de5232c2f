"""``flagledger proxy register|cancel``: Mynaportal proxies (a perpetrator registered as proxy sees what the
victim sees until cancelled); ``proxy bar|bar-approve|lift|lift-approve``: a guardian or proxy barred from
acting for a protected person, four eyes each way (docs/year.md); ``proxy approval|approval-approve|withdraw|
withdraw-approve|approvals``: a holder's four-eyes approval of a proxy who may read the person's portal page while
the holder protects them, sent to the hub by the node's bridge (hub mode, docs/linkage.md)."""

from __future__ import annotations

from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out, unlocked
from ledger.cli.parsing import UUID_ID, argument, choices, option
from ledger.domain.guardians import GuardianRelation

proxy = group("proxy", "Mynaportal proxies")


@command(proxy, "register", help="register a proxy")
@as_actor()
@option("--subject", required=True)
@option("--proxy", required=True)
def register(actor: Actor, subject: str, proxy: str) -> int:
    app = node().app
    registration = app.register_proxy(actor, subject, proxy)
    # pseudonyms only: the individual numbers typed are not repeated on the terminal
    out({"registered": str(registration), "subject": app.subject(subject), "proxy": app.subject(proxy)})
    return 0


@command(proxy, "cancel", help="cancel a proxy")
@as_actor()
@option("--subject", required=True)
@option("--proxy", required=True)
@option("--reason", default="")
def cancel(actor: Actor, subject: str, proxy: str, reason: str) -> int:
    app = node().app
    # "sent": in hub mode, another agency's registration — the hub cancels it once the bridge sent it
    how = app.cancel_proxy(actor, subject, proxy, reason)
    out({"cancelled": True, "how": how, "subject": app.subject(subject), "proxy": app.subject(proxy)})
    return 0


@command(proxy, "bar", help="propose barring a guardian or proxy from acting for a protected person")
@as_actor()
@option("--subject", required=True, help="the protected person")
@option("--guardian", required=True, help="the guardian or proxy (often the perpetrator)")
@option("--relation", default="parent", type=choices(GuardianRelation))
def bar(actor: Actor, subject: str, guardian: str, relation: str) -> int:
    bid = node().app.propose_guardian_bar(unlocked(actor), subject, guardian, relation)
    out({"bar_id": str(bid), "status": "proposed"})
    return 0


@command(proxy, "bar-approve", help="approve a guardian bar (another person than its proposer)")
@as_actor()
@argument("bar_id", type=UUID_ID)
def bar_approve(actor: Actor, bar_id: UUID) -> int:
    node().app.approve_guardian_bar(unlocked(actor), bar_id)
    out({"bar_id": str(bar_id), "status": "in_force"})
    return 0


@command(proxy, "lift", help="propose lifting a guardian bar")
@as_actor()
@argument("bar_id", type=UUID_ID)
@option("--note", required=True, help="why the guardian may act for the person again")
def lift(actor: Actor, bar_id: UUID, note: str) -> int:
    node().app.propose_bar_lift(unlocked(actor), bar_id, note)
    out({"bar_id": str(bar_id), "status": "lift_proposed"})
    return 0


@command(proxy, "lift-approve", help="approve lifting a guardian bar (another person than its proposer)")
@as_actor()
@argument("bar_id", type=UUID_ID)
def lift_approve(actor: Actor, bar_id: UUID) -> int:
    node().app.lift_guardian_bar(unlocked(actor), bar_id)
    out({"bar_id": str(bar_id), "status": "lifted"})
    return 0


@command(proxy, "bars", help="this agency's guardian bars, proposed or in force")
@as_actor()
def bars(actor: Actor) -> int:
    out({"bars": node().app.guardian_bars(actor)})
    return 0


@command(proxy, "approval", help="propose that a proxy may read a person this agency protects (a holder's approval)")
@as_actor()
@option("--subject", required=True, help="the person this agency holds a flag on")
@option("--proxy", required=True, help="the proxy, known to the person and checked at the counter")
@option("--note", default="", help="why (stays in this node's log)")
def approval(actor: Actor, subject: str, proxy: str, note: str) -> int:
    aid = node().app.propose_proxy_approval(unlocked(actor), subject, proxy, note)
    out({"approval_id": str(aid), "status": "proposed"})
    return 0


@command(proxy, "approval-approve", help="approve a proxy approval (another person than its proposer)")
@as_actor()
@argument("approval_id", type=UUID_ID)
def approval_approve(actor: Actor, approval_id: UUID) -> int:
    node().app.approve_proxy_approval(unlocked(actor), approval_id)
    out({"approval_id": str(approval_id), "status": "in_force"})
    return 0


@command(proxy, "withdraw", help="propose withdrawing a proxy approval")
@as_actor()
@argument("approval_id", type=UUID_ID)
@option("--note", required=True, help="why the proxy may no longer read the person's page")
def withdraw(actor: Actor, approval_id: UUID, note: str) -> int:
    node().app.propose_proxy_withdrawal(unlocked(actor), approval_id, note)
    out({"approval_id": str(approval_id), "status": "withdrawal_proposed"})
    return 0


@command(proxy, "withdraw-approve", help="approve withdrawing a proxy approval (another person than its proposer)")
@as_actor()
@argument("approval_id", type=UUID_ID)
def withdraw_approve(actor: Actor, approval_id: UUID) -> int:
    node().app.withdraw_proxy_approval(unlocked(actor), approval_id)
    out({"approval_id": str(approval_id), "status": "withdrawn"})
    return 0


@command(proxy, "approvals", help="this agency's proxy approvals, proposed or in force")
@as_actor()
def approvals(actor: Actor) -> int:
    out({"approvals": node().app.proxy_approvals(actor)})
    return 0
