"""Short-lived bearer tokens for the HTTP API and the console, bound to an agency, a staff member and roles.

A token is ``fl1.<payload>.<mac>``: the payload (base64url JSON) names agency, staff, roles, issue and expiry
times and a random id; the MAC is HMAC-SHA256 under the node's API secret (``api-token.key`` in the key store,
made on first use, never in the ledger). Tokens are checked on every call against the *current* ledger state: a
deactivated staff member's tokens stop working at once, and a role revoked since issue stops counting
(the token's roles only ever narrow what the recorded permission table allows). Rotating the secret
revokes every token of the node.

A token names the *kind* of account it was issued to (``"kind"``: ``"staff"``, the default of tokens made
before issue 18, or ``"system"``): a staff token is checked against the agency's staff, a system token
against its system accounts (the portal, the linkage gateway; :mod:`ledger.domain.accounts`), so one can
never pass for the other. System tokens come only from the account's own secret (:func:`issue_system_token`,
``POST /api/v1/system/token``), recorded like every grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import Actor
from ledger.app.credentials import StaffSigner
from ledger.domain.types import Action, Role, parse_enum
from ledger.errors import AuthError, Code, InputError, NotFoundError, PermissionDenied, StorageError
from ledger.runtime.bootstrap import Node
from ledger.runtime.tables import cli_sessions

__all__ = [
    "DEFAULT_TTL",
    "KIND_STAFF",
    "KIND_SYSTEM",
    "MAX_TTL",
    "SYSTEM_TTL",
    "AuthError",
    "Principal",
    "issue_own_token",
    "issue_system_token",
    "password_factor",
    "required_factor",
    "sign_in",
    "token_secret",
    "verify_token",
]

PREFIX = "fl1"
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(hours=12)  # one working day at most: a lost token must not outlive the shift
SYSTEM_TTL = timedelta(hours=1)  # a program signs in again with its secret; a stolen token soon lapses
KIND_STAFF = "staff"
KIND_SYSTEM = "system"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    actor: Actor
    roles: tuple[str, ...]
    expires_at: datetime
    token_id: str
    kind: str = KIND_STAFF  # "staff" | "system"
    factors: tuple[str, ...] = ()  # how the person proved it was them beyond the first factor, e.g. ("key",)

    @property
    def is_system(self) -> bool:
        return self.kind == KIND_SYSTEM

    def require(self, node: Node, action: Action) -> None:
        """The recorded permission table (live roles) and the token's own roles must both allow ``action``;
        a system token acts only as its system account's kind, a staff token only as staff."""
        if self.is_system:
            agency, _ = node.app.authorise_system(self.actor, action)
        else:
            agency, _ = node.app.authorise(self.actor, action)
        if not agency.allows(set(self.roles), action):
            raise PermissionDenied(
                f"this token (roles: {', '.join(self.roles)}) does not cover {action.value}", code=Code.TOKEN_SCOPE
            )


def token_secret(node: Node) -> bytes:
    """The node's token MAC secret, created with 256 random bits the first time it is needed."""
    return node.keys.api_token_secret()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, f"{PREFIX}.{body}".encode(), hashlib.sha256).digest())


def _seal(node: Node, principal: Principal, issued_at: datetime, account_version: int | None = None) -> str:
    payload = {
        "agency": principal.actor.agency,
        "staff": principal.actor.staff,
        "roles": list(principal.roles),
        "iat": int(issued_at.timestamp()),
        "exp": int(principal.expires_at.timestamp()),
        "jti": principal.token_id,
    }
    if principal.is_system:  # (staff tokens keep the payload they always had)
        payload["kind"] = KIND_SYSTEM
        payload["sv"] = account_version  # the account as it stood: a new secret or deactivation ends the token
    if principal.factors:
        payload["amr"] = list(principal.factors)
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{PREFIX}.{body}.{_mac(token_secret(node), body)}"


def password_factor(node: Node, agency: str, staff: str, password: str) -> tuple[Actor, StaffSigner]:
    """The first factor: ``staff``'s own password, which also opens their staff key — opened, not held: the
    caller holds it (``node.app.hold_key``) only once every factor the person registered is done, so a sign-in
    abandoned after the password leaves no key to sign with in this process. An unknown agency or staff
    member is refused like a wrong password; wrong ones are recorded and lock the credential after five
    (ledger/app/credentials.py)."""
    try:
        node.app.staff(agency, staff)  # (NotFound too for an agency this node does not host)
    except NotFoundError:
        raise AuthError("unknown staff member or wrong password") from None
    return Actor(agency, staff), node.app.open_key(agency, staff, password)


def required_factor(node: Node, actor: Actor) -> str | None:
    """The second factor ``actor`` has registered: "key" (a security key), else "totp" (one-time codes, if the
    agency allows them), else None."""
    if node.app.security_keys(actor.agency, actor.staff):
        return "key"
    if node.app.has_one_time_codes(actor.agency, actor.staff):
        return "totp"
    return None


def sign_in(
    node: Node,
    agency: str,
    staff: str,
    password: str,
    *,
    code: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    roles: tuple[str, ...] | None = None,
    channel: str = "",
) -> tuple[str, Principal]:
    """A staff member signs in with their own password (and one-time code, if they registered codes) and gets
    a token for themselves; nobody gets one for someone else (issue 18). The password also unlocks their
    staff key in this process once the one-time code (if any) is right too, so the acts the token is used for
    carry their own signature. Wrong passwords and codes are recorded and lock the credential
    (ledger/app/credentials.py, one_time_codes.py). Someone with a security key signs in through the console,
    where the key can answer. ``channel`` prefixes how the
    sign-in is recorded (``cli_``: ``flagledger login``; ``cli_once_``: one command's ``--as`` and password)."""
    _check_ttl(ttl)
    actor, key = password_factor(node, agency, staff, password)
    factors: tuple[str, ...] = ()
    need = required_factor(node, actor)
    if need == "key":
        raise AuthError(
            "this staff member signs in with a security key: use the console (/console/login); on the command "
            "line, `flagledger login --with-token` with a token from there"
        )
    if need == "totp":
        if not code:
            raise AuthError("this staff member signs in with a one-time code too: give it (`code`)")
        node.app.use_one_time_code(actor, code)
        factors = ("totp",)
    signed_in = issue_own_token(
        node,
        actor,
        via=f"{channel}password_totp" if factors else f"{channel}password",
        factors=factors,
        ttl=ttl,
        roles=roles,
    )
    node.app.hold_key(key)  # every factor done: from here this process signs the person's acts
    return signed_in


def issue_own_token(
    node: Node,
    actor: Actor,
    *,
    via: str,
    factors: tuple[str, ...] = (),
    ttl: timedelta = DEFAULT_TTL,
    roles: tuple[str, ...] | None = None,
) -> tuple[str, Principal]:
    """A session for a staff member who has just proven who they are themselves (``via``: how, e.g. ``oidc``;
    ``factors``: what else they proved, e.g. ``("key",)`` for a security key), with the roles they hold now;
    recorded like an administrator's grant, with ``via`` instead of an issuer."""
    _check_ttl(ttl)
    member = node.app.staff(actor.agency, actor.staff)
    if not member.active:
        raise AuthError("staff member deactivated: no session")
    held = set(member.roles)
    wanted = {parse_enum(Role, r, "role").value for r in roles} if roles else held
    if not wanted <= held:  # a token may be narrowed to some of the person's roles, never widened
        raise InputError(f"you do not hold role(s) {', '.join(sorted(wanted - held))}", field="role")
    now = node.app.clock()
    principal = Principal(actor, tuple(sorted(wanted)), now + ttl, secrets.token_hex(8), factors=tuple(sorted(factors)))
    node.app.record_sign_in(actor, principal.roles, principal.expires_at, principal.token_id, via)
    return _seal(node, principal, now), principal


def _check_ttl(ttl: timedelta) -> None:
    if not timedelta(seconds=30) <= ttl <= MAX_TTL:
        raise InputError(f"token lifetime must be between 30 seconds and {MAX_TTL}", field="ttl")


def issue_system_token(
    node: Node, agency: str, account: str, secret: str, *, ttl: timedelta = SYSTEM_TTL
) -> tuple[str, Principal]:
    """A system account signs in with its own secret (never an administrator on its behalf) and gets a
    token of kind ``system`` holding its kind's roles; the grant is recorded first (issuer: the account)."""
    if not timedelta(seconds=30) <= ttl <= SYSTEM_TTL:
        raise InputError(f"a system token's lifetime must be between 30 seconds and {SYSTEM_TTL}", field="ttl")
    acc = node.app.authenticate_system(agency, account, secret)
    now = node.app.clock()
    principal = Principal(Actor(agency, account), tuple(acc.roles), now + ttl, secrets.token_hex(8), KIND_SYSTEM)
    token = _seal(node, principal, now, acc.credential_version)
    node.app.record_system_token_grant(principal.actor, principal.roles, principal.expires_at, principal.token_id)
    return token, principal


def verify_token(node: Node, token: str) -> Principal:
    """Check MAC, expiry and the staff member's current standing; raise :class:`AuthError` otherwise.

    Every failure says only *that* the token is not accepted and why in general terms: nothing about
    any person's protection can depend on it.
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise AuthError(
            "malformed token: expected fl1.<payload>.<mac> from your own sign-in (`flagledger staff token`)"
        )
    body, mac = parts[1], parts[2]
    if not hmac.compare_digest(_mac(token_secret(node), body), mac):
        raise AuthError("token signature does not verify (forged, altered, or from another node)")
    try:
        claims = json.loads(_unb64(body))
        actor = Actor(str(claims["agency"]), str(claims["staff"]))
        roles = tuple(str(r) for r in claims["roles"])
        exp = datetime.fromtimestamp(int(claims["exp"]), tz=node.app.clock().tzinfo)
        jti = str(claims["jti"])
        factors = tuple(str(f) for f in claims.get("amr", ()))
        kind = str(claims.get("kind", KIND_STAFF))
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError("token payload is not valid") from exc
    if node.app.clock() >= exp:
        raise AuthError("token expired: sign in again (`flagledger staff token`, or POST /api/v1/sign-in)")
    if actor.agency not in node.app.hosted:
        raise AuthError("token names an agency not hosted on this node")
    if kind == KIND_SYSTEM:
        try:
            account = node.app.system_account(actor.agency, actor.staff)
        except NotFoundError:
            raise AuthError("token names no enrolled system account") from None
        if not account.active:
            raise AuthError("system account deactivated: token no longer accepted")
        if claims.get("sv") != account.credential_version:
            raise AuthError("the system account's secret was replaced since: sign in again")
        return Principal(actor, roles, exp, jti, KIND_SYSTEM)
    if kind != KIND_STAFF:
        raise AuthError("token payload is not valid")
    try:
        member = node.app.staff(actor.agency, actor.staff)
    except NotFoundError:
        raise AuthError("token names no enrolled staff member") from None
    if not member.active:
        raise AuthError("staff member deactivated: token no longer accepted")
    if _session_ended(node, jti):
        raise AuthError("this session was signed out (`flagledger logout`): sign in again", code=Code.SESSION_ENDED)
    return Principal(actor, roles, exp, jti, factors=factors)


def _session_ended(node: Node, jti: str) -> bool:
    """Whether ``jti`` is a command-line session its person signed out of (ledger/cli/session.py marks the
    node's row ended): the token a logout ended is refused by the API too, not only by the CLI. A token with
    no such row (the console's, the API's own sign-in) is not a CLI session."""
    try:
        with node.engine.connect() as conn:
            ended = conn.execute(select(cli_sessions.c.ended_at).where(cli_sessions.c.id == jti)).scalar()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot check the session: {exc.__class__.__name__}") from exc
    return ended is not None
