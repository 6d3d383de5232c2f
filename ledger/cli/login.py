"""``flagledger login``, ``logout``, ``whoami``: a staff member's command-line session on this node, like
``gh auth login`` (the session's two halves and who a command acts as: ledger/cli/session.py)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from ledger.api.auth import MAX_TTL, verify_token
from ledger.app import Actor
from ledger.cli.base import as_actor, command, data_dir, node, out, password_for, signed_in
from ledger.cli.parsing import TTL, option
from ledger.cli.session import (
    SESSION_TTL,
    TOKEN_ENV,
    end_session,
    keep_token_session,
    open_session,
    read_session,
    remove_session,
    session_path,
    write_session,
)
from ledger.errors import AuthError, Code, InputError
from ledger.runtime.bootstrap import Node

__all__ = ["login", "logout", "whoami"]


def _answer(actor: Actor, roles: tuple[str, ...], expires_at: str, how: str, can_sign: bool) -> dict[str, object]:
    return {
        "agency": actor.agency,
        "staff": actor.staff,
        "roles": list(roles),
        "expires_at": expires_at,
        "how": how,
        "signs_with_session": can_sign,
    }


def _end_previous(opened: Node, where: Path) -> None:
    """A new sign-in on this node replaces the session file: the session it held ends on the node too."""
    try:
        previous = read_session(where)
    except AuthError:
        return
    if previous and isinstance(previous.get("session"), str):
        end_session(opened, previous["session"])


@command(None, "login", help="sign in on this node: later commands act as you until the session expires (8 h)")
@as_actor(required=False, help_="you, e.g. 131016/tanaka", authenticate=False)  # (the sign-in itself)
@option("--code", "one_time_code", default=None, help="your one-time code, if you registered codes")
@option("--ttl", type=TTL, default=SESSION_TTL, help="session lifetime: 900, 15m, 8h (30 s to 12 h)")
@option("--with-token", is_flag=True, help="sign in with a token read from stdin (e.g. one from the console)")
def login(actor: Actor | None, one_time_code: str | None, ttl: timedelta, with_token: bool) -> int:
    opened, where = node(), data_dir()
    if with_token:
        token = sys.stdin.readline().strip()
        if not token:
            raise InputError("--with-token reads a token from stdin: none was given", field="token")
        who = verify_token(opened, token)
        if who.is_system:
            raise AuthError("a system account's token is not a staff member's session", code=Code.STAFF_ONLY)
        if actor is not None and actor != who.actor:
            raise AuthError(f"the token is {who.actor}'s, not {actor}'s", code=Code.SESSION_MISMATCH)
        keep_token_session(opened, who)  # (its sign-in was recorded when it was issued)
        secret = None
    else:
        if actor is None:
            raise InputError("say who signs in: flagledger login --as AGENCY/STAFF (or --with-token)", field="actor")
        if not timedelta(seconds=30) <= ttl <= MAX_TTL:  # (before the password is asked for)
            raise InputError(f"a session lasts between 30 seconds and {MAX_TTL}", field="ttl")
        token, who, key = open_session(opened, actor, password_for(actor), code=one_time_code, ttl=ttl)
        secret = key.hex()
    expires_at = who.expires_at.replace(microsecond=0).isoformat()  # (as the token holds it: whole seconds)
    entry: dict[str, str | list[str] | None] = {
        "data_dir": str(where.resolve()),
        "agency": who.actor.agency,
        "staff": who.actor.staff,
        "roles": list(who.roles),
        "session": who.token_id,
        "token": token,
        "key_secret": secret,
        "expires_at": expires_at,
    }
    _end_previous(opened, where)
    path = write_session(where, entry)
    out(
        {
            **_answer(who.actor, who.roles, expires_at, "session", secret is not None),
            "session_file": str(path),
        }
    )
    if secret is None:
        print("signed in with a token: acts you sign ask for your password", file=sys.stderr)
    return 0


@command(None, "logout", help="end your session on this node (its key copy on the node and your session file)")
def logout() -> int:
    import os

    where = data_dir()
    if os.environ.get(TOKEN_ENV):
        print(f"{TOKEN_ENV} is set: commands use it until you unset it", file=sys.stderr)
    try:
        entry = read_session(where)
    except AuthError:  # an unreadable file: nothing of it can be ended on the node, but it goes
        entry = {}
    if not entry:
        remove_session(where)
        out({"signed_out": None})
        print(f"no session for {where} here", file=sys.stderr)
        return 0
    ended = end_session(node(), str(entry.get("session", "")))
    remove_session(where)
    out({"signed_out": f"{entry.get('agency')}/{entry.get('staff')}", "node_session_ended": ended})
    return 0


@command(None, "whoami", help="who this node's commands act as: agency/staff, roles, session expiry")
def whoami() -> int:
    import os

    from ledger.cli.session import current

    signed_in(None)
    auth = current()
    assert auth is not None and auth.principal is not None  # (without --as, a token or a session)
    who = auth.principal
    out(
        {
            **_answer(who.actor, who.roles, who.expires_at.isoformat(), auth.how, auth.sealed is not None),
            **({"session_file": str(session_path(data_dir()))} if auth.how == "session" else {}),
            **({"from": TOKEN_ENV} if auth.how == "token" and os.environ.get(TOKEN_ENV) else {}),
        }
    )
    return 0
