"""``flagledger permission grant|revoke``: the agency's per-role permission table."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import argument, choices
from ledger.domain.types import Action, Role

permission = group("permission", "the per-role permission table")


@command(permission, "grant", help="grant an action to a role")
@as_actor()
@argument("role", type=choices(Role))
@argument("action", type=choices(Action))
def grant(actor: Actor, role: str, action: str) -> int:
    node().app.grant_permission(actor, role, action)
    out({"agency": actor.agency, "role": role, "granted": action})
    return 0


@command(permission, "revoke", help="revoke an action from a role")
@as_actor()
@argument("role", type=choices(Role))
@argument("action", type=choices(Action))
def revoke(actor: Actor, role: str, action: str) -> int:
    node().app.revoke_permission(actor, role, action)
    out({"agency": actor.agency, "role": role, "revoked": action})
    return 0
