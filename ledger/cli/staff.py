"""``flagledger staff …``: staff members, their roles, grants that take two administrators, and short-lived
API/console tokens."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import click

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out, password_for, unlocked
from ledger.cli.parsing import TTL, UUID_ID, argument, choices, option
from ledger.domain.types import Role
from ledger.errors import InputError

staff = group(
    "staff", "staff, roles and role grants (approver, operator, reviewer, administrator take two administrators)"
)


@command(staff, "enroll", help="enrol a staff member (a privileged role becomes a pending grant)")
@as_actor()
@argument("staff")
@option("--name", default="")
@option("--role", type=choices(Role), multiple=True, required=True)
def enroll(actor: Actor, staff: str, name: str, role: tuple[str, ...]) -> int:
    app = node().app
    pending = app.enrol(unlocked(actor), staff, name or staff, list(role))
    code = app.issue_enrolment_code(actor, staff)
    granted = sorted(app.staff(actor.agency, staff).roles)
    # the code is shown once: give it to the person, who runs `flagledger staff activate` and chooses a password
    out(
        {
            "enrolled": f"{actor.agency}/{staff}",
            "roles": granted,
            "pending_grants": [{"grant": str(g.id), "role": g.role} for g in pending],
            "enrolment_code": code,
        }
    )
    for g in pending:
        print(
            f"{g.role} waits for a second administrator of {actor.agency}: flagledger staff approve-grant {g.id}",
            file=sys.stderr,
        )
    return 0


@command(staff, "code", help="issue a new one-time enrolment code for a staff member (a lost password)")
@as_actor(required=False, authenticate=False)
@argument("staff")
def code(actor: Actor | None, staff: str) -> int:
    from ledger.cli.base import signed_in

    app = node().app
    # an old log's agency has no roster yet, so nobody there can sign in: its administrator's first code needs
    # neither a session nor a signature (whoever activates it becomes the root; docs/staff-signing.md)
    if actor is None or app.roster(actor.agency) is not None:
        actor = unlocked(signed_in(actor))
    issued = app.issue_enrolment_code(actor, staff)
    out({"staff": f"{actor.agency}/{staff}", "enrolment_code": issued})
    return 0


@command(staff, "activate", help="complete your enrolment: choose your password; your staff key is made")
@as_actor(help_="you, e.g. 131016/tanaka", authenticate=False)  # (the enrolment code authenticates)
@option("--code", "enrolment_code", required=True, help="the one-time enrolment code an administrator gave you")
def activate(actor: Actor, enrolment_code: str) -> int:
    app = node().app
    signer = app.activate_credential(actor.agency, actor.staff, enrolment_code, password_for(actor, new=True))
    out({"activated": str(actor), "staff_key": signer.key_id})
    return 0


@command(
    staff, "grant-role", help="grant a role; approver, operator, reviewer and administrator are proposed (pending)"
)
@as_actor()
@argument("staff")
@argument("role", type=choices(Role))
def grant_role(actor: Actor, staff: str, role: str) -> int:
    pending = node().app.grant_role(_signing(actor), staff, role)
    if pending is None:
        out({"staff": f"{actor.agency}/{staff}", "granted": role})
    else:
        out({"staff": f"{actor.agency}/{staff}", "proposed": role, "grant": str(pending), "status": "pending"})
        print(
            f"a second administrator of {actor.agency} approves it: flagledger staff approve-grant {pending}",
            file=sys.stderr,
        )
    return 0


@command(staff, "grants", help="list role grants waiting for a second administrator")
@as_actor()
@option("--all", "all_", is_flag=True, help="also approved, rejected and withdrawn ones")
def grants(actor: Actor, all_: bool) -> int:
    for g in node().app.role_grants(actor, pending_only=not all_):
        out(g.as_dict())
    return 0


@command(staff, "approve-grant", help="approve another administrator's role grant (it takes effect)")
@as_actor()
@argument("grant", type=UUID_ID)
@option("--note", default="")
@option(
    "--break-glass",
    is_flag=True,
    help="co-approve, as a prefecture's administrator hosted here, a grant of an agency with a single administrator",
)
@option(
    "--break-glass-from",
    "co_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="record the co-approval your prefecture's administrator signed on their node (`staff co-approve`)",
)
def approve_grant(actor: Actor, grant: UUID, note: str, break_glass: bool, co_file: Path | None) -> int:
    if co_file is not None:
        if break_glass or note:
            raise InputError("--break-glass-from carries the prefecture's note: give neither --note nor --break-glass")
        g = node().app.approve_grant_from(actor, grant, _json_file(co_file, "co-approval"))
        out(g.as_dict())
        print(
            f"break-glass: recorded at {g.agency} as co-approved by {g.decided_by_agency}/{g.decided_by}",
            file=sys.stderr,
        )
        return 0
    g = node().app.approve_grant(_signing(actor), grant, note, break_glass=break_glass)
    out(g.as_dict())
    if break_glass:
        print(f"break-glass: recorded at {g.agency} as co-approved by {actor}", file=sys.stderr)
    return 0


@command(staff, "export-grant", help="print a pending grant for your prefecture to co-approve (break-glass)")
@as_actor()
@argument("grant", type=UUID_ID)
def export_grant(actor: Actor, grant: UUID) -> int:
    out(node().app.export_grant(actor, grant))
    print(
        "hand this to your prefecture's administrator by a channel you trust; they run "
        "`flagledger staff co-approve --grant-file FILE --note …` on their node",
        file=sys.stderr,
    )
    return 0


@command(staff, "co-approve", help="as a prefecture's administrator, sign a break-glass co-approval of a grant")
@as_actor()
@option(
    "--grant-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the municipality's `staff export-grant` output",
)
@option("--grant", "grant_id", type=UUID_ID, default=None, help="the grant's id (without --grant-file)")
@option("--agency", default=None, help="the municipality's code (without --grant-file)")
@option("--digest", default=None, help="the grant's digest (without --grant-file)")
@option("--note", required=True, help="why: who asked, how it was confirmed")
def co_approve(
    actor: Actor, grant_file: Path | None, grant_id: UUID | None, agency: str | None, digest: str | None, note: str
) -> int:
    if grant_file is not None:
        exported = _json_file(grant_file, "exported grant")
    elif grant_id is not None and agency and digest:
        exported = {"agency": agency, "grant": str(grant_id), "digest": digest}
    else:
        raise InputError("give --grant-file, or --grant, --agency and --digest", field="grant")
    out(node().app.co_approve(unlocked(actor), exported, note))
    print(
        "give this co-approval to the municipality's administrator: "
        "flagledger staff approve-grant GRANT --break-glass-from FILE",
        file=sys.stderr,
    )
    return 0


def _json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable {what} (JSON): {exc}", field=what) from None
    if not isinstance(value, dict):
        raise InputError(f"{path} is not a {what} (a JSON object)", field=what)
    return value


@command(staff, "reject-grant", help="reject another administrator's role grant")
@as_actor()
@argument("grant", type=UUID_ID)
@option("--reason", default="")
def reject_grant(actor: Actor, grant: UUID, reason: str) -> int:
    out(node().app.reject_grant(actor, grant, reason).as_dict())
    return 0


@command(staff, "withdraw-grant", help="withdraw a role grant you proposed")
@as_actor()
@argument("grant", type=UUID_ID)
@option("--reason", default="")
def withdraw_grant(actor: Actor, grant: UUID, reason: str) -> int:
    out(node().app.withdraw_grant(actor, grant, reason).as_dict())
    return 0


@command(staff, "revoke-role", help="revoke a role")
@as_actor()
@argument("staff")
@argument("role", type=choices(Role))
def revoke_role(actor: Actor, staff: str, role: str) -> int:
    node().app.revoke_role(actor, staff, role)
    out({"staff": f"{actor.agency}/{staff}", "revoked": role})
    return 0


@command(staff, "password", help="change your password (your staff key stays; it is wrapped anew)")
@as_actor(help_="you, e.g. 131016/tanaka", authenticate=False)  # (the old password authenticates)
def password(actor: Actor) -> int:
    import os

    import click

    app = node().app
    old = password_for(actor)
    new = os.environ.get("FLAGLEDGER_NEW_PASSWORD") or str(
        click.prompt(f"new password for {actor}", hide_input=True, confirmation_prompt=True, err=True)
    )
    app.change_password(actor.agency, actor.staff, old, new)
    out({"password_changed": str(actor)})
    return 0


@command(staff, "deactivate", help="deactivate a staff member")
@as_actor()
@argument("staff")
def deactivate(actor: Actor, staff: str) -> int:
    node().app.deactivate_staff(actor, staff)
    out({"deactivated": f"{actor.agency}/{staff}"})
    return 0


@command(staff, "token", help="sign in and print a short-lived API/console token for yourself")
@as_actor(help_="you, e.g. 131016/tanaka", authenticate=False)  # (a sign-in: password and second factor)
@option("--ttl", type=TTL, default=timedelta(hours=1), help="lifetime: 900, 15m, 8h (30 s to 12 h)")
@option("--role", multiple=True, help="narrow the token to these of your roles")
@option("--code", "one_time_code", default=None, help="your one-time code, if you registered codes")
def token(actor: Actor, ttl: timedelta, role: tuple[str, ...], one_time_code: str | None) -> int:
    # only ever your own: an administrator cannot make one for someone else (issue 18)
    from ledger.api.auth import sign_in

    issued, who = sign_in(
        node(), actor.agency, actor.staff, password_for(actor), code=one_time_code, ttl=ttl, roles=role or None
    )
    out(
        {
            "token": issued,
            "agency": who.actor.agency,
            "staff": who.actor.staff,
            "roles": list(who.roles),
            "expires_at": who.expires_at.isoformat(),
        }
    )
    return 0


def _signing(actor: Actor) -> Actor:
    """``actor`` with their staff key open: an administrator signs the grants they propose and approve (the
    roster certifies the roles a peer checks with those signatures, docs/staff-signing.md) — unless the agency
    has no roster yet (a log from before staff signing: nothing to sign with)."""
    return unlocked(actor) if node().app.roster(actor.agency) is not None else actor
