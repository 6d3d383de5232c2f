"""Who a staff command acts as: the person signed in (``flagledger login``), never a bare ``--as`` (issue 18).

A session has two halves. The person's **session file** (0600, in a 0700 directory under
``$FLAGLEDGER_CONFIG_DIR``, ``$XDG_CONFIG_HOME/flagledger`` or ``~/.config/flagledger``; one file per data
directory, named by a digest of its absolute path) holds their token and a random 256-bit **session secret**.
The node's ``cli_sessions`` row (ledger/runtime/tables.py, never published) holds their staff key sealed
under that secret. So the node's data and every node secret open no staff key without the file, and the file
without the node's row (after ``logout``, or on another node) opens nothing. Whoever reads the person's
session file acts as them until it expires — as with ``gh`` or ``kubectl`` credentials.

How a command learns who acts (:func:`signed_in`), first match wins:

1. ``FLAGLEDGER_TOKEN``: a token from ``flagledger login``, ``staff token`` or the console; acts need the
   password to sign (it carries no session secret);
2. ``--as`` with ``FLAGLEDGER_PASSWORD`` (and ``FLAGLEDGER_ONE_TIME_CODE`` when the person registered codes):
   the scripts' path, a sign-in for this one command, recorded like every sign-in;
3. the session file for this data directory; ``--as``, if given, must name the same person.

(A person whose staff key this very process already opened with their password — the demo and the test
suite run many commands in one process — counts as signed in; a new ``flagledger`` process holds none.)

Otherwise the command is refused (``not_signed_in``, exit 4): ``--as`` alone authenticates nobody.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import delete, insert, select, update

from ledger.api.auth import Principal, sign_in, verify_token
from ledger.app import Actor
from ledger.app.credentials import StaffSigner
from ledger.errors import AuthError, Code, NotFoundError, PermissionDenied
from ledger.files import private_dir, replace_private
from ledger.runtime.bootstrap import Node
from ledger.runtime.tables import cli_sessions

__all__ = [
    "CODE_ENV",
    "CONFIG_ENV",
    "SESSION_TTL",
    "TOKEN_ENV",
    "SignedIn",
    "end_session",
    "has_credentials",
    "open_session",
    "read_session",
    "remove_session",
    "session_path",
    "signed_in",
    "unseal",
    "write_session",
]

SESSION_TTL = timedelta(hours=8)  # a working day's shift; bounded like tokens (30 s to 12 h)
ONCE_TTL = timedelta(minutes=5)  # one command's sign-in: its token is never handed out
TOKEN_ENV = "FLAGLEDGER_TOKEN"
CODE_ENV = "FLAGLEDGER_ONE_TIME_CODE"
CONFIG_ENV = "FLAGLEDGER_CONFIG_DIR"
PASSWORD_ENV = "FLAGLEDGER_PASSWORD"
_SIGNED_IN = "flagledger.signed_in"  # key in ``ctx.meta``: this command's authentication, done once


@dataclass(frozen=True)
class SignedIn:
    """How this command's person proved who they are."""

    actor: Actor
    # "session" (the session file), "token" (FLAGLEDGER_TOKEN), "password" (this command only), "process" (a key
    # this process opened with the person's password before: the demo and the test suite run commands in one)
    how: str
    principal: Principal | None
    sealed: dict[str, str] | None = None  # the node's sealed staff key (a password session)
    secret: bytes | None = None  # the session file's secret that opens it


# -- the session file --------------------------------------------------------------------------------------
def config_dir() -> Path:
    given = os.environ.get(CONFIG_ENV)
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "flagledger"


def session_path(where: Path) -> Path:
    """The session file for the node in data directory ``where`` (one per node: several may run here)."""
    digest = hashlib.sha256(str(where.resolve()).encode()).hexdigest()[:32]
    return config_dir() / "sessions" / f"{digest}.json"


def read_session(where: Path) -> dict[str, Any] | None:
    path = session_path(where)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AuthError(f"the session file {path} is unreadable: sign in again", code=Code.SESSION_ENDED) from exc
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        raise AuthError(f"the session file {path} is not a session: sign in again", code=Code.SESSION_ENDED)
    return entry


def write_session(where: Path, entry: dict[str, Any]) -> Path:
    path = session_path(where)
    private_dir(path.parent.parent)
    private_dir(path.parent)
    replace_private(path, json.dumps(entry, indent=1))
    path.chmod(0o600)  # (mkstemp made it 0600; said again so that no umask or copy can loosen it)
    return path


def remove_session(where: Path) -> bool:
    try:
        session_path(where).unlink()
    except FileNotFoundError:
        return False
    return True


# -- the node's half -------------------------------------------------------------------------------------
def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def open_session(
    opened: Node, actor: Actor, password: str, *, code: str | None, ttl: timedelta, channel: str = "cli_"
) -> tuple[str, Principal, bytes]:
    """Sign ``actor`` in (password and second factor, :func:`ledger.api.auth.sign_in`, recorded), seal their
    staff key under a new random secret and keep the sealed copy on the node: (token, principal, secret).
    The secret is returned once, for the person's session file; it is kept nowhere else."""
    token, who = sign_in(opened, actor.agency, actor.staff, password, code=code, ttl=ttl, channel=channel)
    secret = secrets.token_bytes(32)
    sealed = opened.app.signer_for(actor).seal_for_session(secret, who.token_id)
    _keep(opened, who, sealed)
    return token, who, secret


def _keep(opened: Node, who: Principal, sealed: dict[str, str] | None) -> None:
    with opened.engine.begin() as conn:
        conn.execute(delete(cli_sessions).where(cli_sessions.c.expires_at < _utc(opened.app.clock())))
        conn.execute(delete(cli_sessions).where(cli_sessions.c.id == who.token_id))
        conn.execute(
            insert(cli_sessions).values(
                id=who.token_id,
                agency=who.actor.agency,
                staff=who.actor.staff,
                expires_at=_utc(who.expires_at),
                sealed=None if sealed is None else json.dumps(sealed),
            )
        )


def keep_token_session(opened: Node, who: Principal) -> None:
    """The node's row of a session begun with a token (``login --with-token``): nothing sealed, but ``logout``
    can end it here."""
    _keep(opened, who, None)


def end_session(opened: Node, session_id: str) -> bool:
    """Forget the sealed key and mark the session ended (a copy of its token is refused from now on)."""
    with opened.engine.begin() as conn:
        done = conn.execute(
            update(cli_sessions)
            .where(cli_sessions.c.id == session_id)
            .values(sealed=None, ended_at=_utc(opened.app.clock()))
        )
    return bool(done.rowcount)


def _row(opened: Node, session_id: str) -> Any:
    with opened.engine.connect() as conn:
        return conn.execute(select(cli_sessions).where(cli_sessions.c.id == session_id)).first()


# -- who acts ----------------------------------------------------------------------------------------------
def _login_hint(given: Actor | None) -> str:
    return f"flagledger login --as {given or 'AGENCY/STAFF'}"


def _by_token(opened: Node, token: str, entry: dict[str, Any] | None, given: Actor | None) -> SignedIn:
    where = "your session" if entry is not None else TOKEN_ENV
    try:
        who = verify_token(opened, token)
    except AuthError as exc:
        raise AuthError(
            f"{where} is not accepted ({exc}); sign in again: {_login_hint(given)}", code=Code.SESSION_ENDED
        ) from None
    if who.is_system:
        raise AuthError(f"{where} holds a system account's token, not a staff member's", code=Code.STAFF_ONLY)
    row = _row(opened, who.token_id)
    if entry is not None and (row is None or (row.agency, row.staff) != (who.actor.agency, who.actor.staff)):
        raise AuthError(
            f"this node holds no such session: sign in again: {_login_hint(given)}", code=Code.SESSION_ENDED
        )
    if row is not None and row.ended_at is not None:
        raise AuthError(f"this session was signed out: sign in again: {_login_hint(given)}", code=Code.SESSION_ENDED)
    held = set(opened.app.staff(who.actor.agency, who.actor.staff).roles)
    if not held <= set(who.roles):  # the command line acts with every role held: a narrowed token cannot
        raise AuthError(
            f"{where} covers only some of {who.actor}'s roles (narrowed, or granted since): sign in again",
            code=Code.TOKEN_SCOPE,
        )
    sealed = json.loads(row.sealed) if entry is not None and row is not None and row.sealed else None
    raw_secret = entry.get("key_secret") if entry is not None else None
    secret = bytes.fromhex(raw_secret) if isinstance(raw_secret, str) else None
    how = "session" if entry is not None else "token"
    return SignedIn(who.actor, how, who, sealed, secret)


def _once(opened: Node, given: Actor, password: str) -> SignedIn:
    """The scripts' path: ``--as`` and the password (and a one-time code) sign in for this command only."""
    _, who = sign_in(
        opened,
        given.agency,
        given.staff,
        password,
        code=os.environ.get(CODE_ENV) or None,
        ttl=ONCE_TTL,
        channel="cli_once_",
    )
    return SignedIn(who.actor, "password", who)


def _opened_here(opened: Node, given: Actor) -> bool:
    """Whether this process already opened ``given``'s current staff key with their password (a new
    ``flagledger`` process holds none)."""
    try:
        opened.app.signer_for(given)
    except PermissionDenied:
        return False
    return True


def _authenticate(opened: Node, where: Path, given: Actor | None) -> SignedIn:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return _by_token(opened, token, None, given)
    password = os.environ.get(PASSWORD_ENV)
    if given is not None and password:
        return _once(opened, given, password)
    if given is not None and _opened_here(opened, given):
        return SignedIn(given, "process", None)
    entry = read_session(where)
    if entry is not None:
        return _by_token(opened, entry["token"], entry, given)
    raise AuthError(
        f"sign in first: {_login_hint(given)} (in a script: --as with {PASSWORD_ENV}); --as alone proves nothing",
        code=Code.NOT_SIGNED_IN,
    )


def has_credentials(where: Path) -> bool:
    """Whether this command was given a way to sign in other than ``--as`` (a token, a session file)."""
    return bool(os.environ.get(TOKEN_ENV, "").strip()) or session_path(where).exists()


def signed_in(opened: Node, where: Path, given: Actor | None) -> Actor:
    """The person this command (on ``opened``, the node in data directory ``where``) acts as, authenticated
    once per command; ``given`` (``--as``), if any, must be them."""
    meta = click.get_current_context().meta
    auth: SignedIn | None = meta.get(_SIGNED_IN)
    if auth is None:
        try:
            auth = _authenticate(opened, where, given)
        except NotFoundError:  # (an agency or member the node does not know: refused like a wrong password)
            raise AuthError("unknown staff member or wrong password") from None
        meta[_SIGNED_IN] = auth
    if given is not None and given != auth.actor:
        raise PermissionDenied(
            f"signed in as {auth.actor}, not {given}: leave out --as, or `flagledger logout` and sign in as {given}",
            code=Code.SESSION_MISMATCH,
        )
    return auth.actor


def current() -> SignedIn | None:
    """This command's authentication, if :func:`signed_in` ran."""
    found: SignedIn | None = click.get_current_context().meta.get(_SIGNED_IN)
    return found


def unseal(opened: Node, actor: Actor) -> bool:
    """Open ``actor``'s staff key from their session (its sealed copy and the file's secret) and hold it for
    this command; False when this command's authentication holds none (a token, or a key changed since)."""
    auth = current()
    if auth is None or auth.actor != actor or auth.sealed is None or auth.secret is None:
        return False
    session = auth.principal.token_id if auth.principal is not None else ""
    signer = StaffSigner.unseal_session(actor.agency, actor.staff, auth.sealed, auth.secret, session)
    opened.app.hold_session_key(signer)
    return True
