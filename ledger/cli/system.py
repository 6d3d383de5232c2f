"""``flagledger system …``: system accounts (the Mynaportal portal, the linkage gateway), issue 18.

A system account is not a staff member: an administrator enrols it with its kind (a recorded act), it holds
only that kind's roles, and it signs in with its own secret (printed once here; the ledger keeps only its
argon2id hash) — over HTTP with ``POST /api/v1/system/token``, on the command line with the secret in
``FLAGLEDGER_SYSTEM_SECRET`` (never an argument: ``ps`` would show it).
"""

from __future__ import annotations

import os

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import argument, choices, option
from ledger.domain.types import SYSTEM_ROLES, SystemKind
from ledger.errors import AuthError, Code, PermissionDenied
from ledger.runtime.bootstrap import Node

__all__ = ["SECRET_ENV", "signed_in_system", "system"]

SECRET_ENV = "FLAGLEDGER_SYSTEM_SECRET"

system = group("system", "system accounts: the portal and the linkage gateway (not staff)")


def signed_in_system(opened: Node, account: Actor) -> Actor:
    """``account`` once its secret (``FLAGLEDGER_SYSTEM_SECRET``) verifies; a refusal (exit 4) otherwise."""
    secret = os.environ.get(SECRET_ENV, "")
    try:
        opened.app.authenticate_system(account.agency, account.staff, secret)
    except AuthError:
        raise PermissionDenied(
            f"only a system account signed in with its own secret (in {SECRET_ENV}) may do this",
            code=Code.SYSTEM_ONLY,
        ) from None
    return account


@command(system, "enroll", help="enrol a system account of a kind (prints its secret once)")
@as_actor(help_="the administrator who enrols it, e.g. 131016/admin")
@argument("account")
@option("--kind", type=choices(SystemKind), required=True, help="portal | linkage_gateway")
def enroll(actor: Actor, account: str, kind: str) -> int:
    secret = node().app.enroll_system_account(actor, account, kind)
    roles = sorted(r.value for r in SYSTEM_ROLES[SystemKind(kind)])
    out({"enrolled": f"{actor.agency}/{account}", "kind": kind, "roles": roles, "secret": secret})
    return 0


@command(system, "new-secret", help="replace a system account's secret (the old one stops at once)")
@as_actor(help_="the administrator, e.g. 131016/admin")
@argument("account")
def new_secret(actor: Actor, account: str) -> int:
    secret = node().app.replace_system_secret(actor, account)
    out({"account": f"{actor.agency}/{account}", "secret": secret})
    return 0


@command(system, "deactivate", help="deactivate a system account (its tokens stop at once)")
@as_actor(help_="the administrator, e.g. 131016/admin")
@argument("account")
def deactivate(actor: Actor, account: str) -> int:
    node().app.deactivate_system_account(actor, account)
    out({"deactivated": f"{actor.agency}/{account}"})
    return 0
