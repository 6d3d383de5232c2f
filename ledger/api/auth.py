"""Short-lived bearer tokens for the HTTP API and the console, bound to an agency, a staff member and roles.

A token is ``fl1.<payload>.<mac>``: the payload (base64url JSON) names agency, staff, roles, issue and expiry
times and a random id; the MAC is HMAC-SHA256 under the node's API secret (``api-token.key`` in the key store,
made on first use, never in the ledger). Tokens are checked on every call against the *current* ledger state: a
deactivated staff member's tokens stop working at once, and a role revoked since issue stops counting
(the token's roles only ever narrow what the recorded permission table allows). Rotating the secret
revokes every token of the node.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.app import Actor
from ledger.domain.types import Action, Role, parse_enum
from ledger.errors import AuthError, Code, InputError, NotFoundError, PermissionDenied
from ledger.runtime.bootstrap import Node

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "AuthError",
    "Principal",
    "issue_own_token",
    "issue_token",
    "token_secret",
    "verify_token",
]

PREFIX = "fl1"
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(hours=12)  # one working day at most: a lost token must not outlive the shift


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    actor: Actor
    roles: tuple[str, ...]
    expires_at: datetime
    token_id: str
    factors: tuple[str, ...] = ()  # how the person proved it was them beyond the first factor, e.g. ("key",)

    def require(self, node: Node, action: Action) -> None:
        """The recorded permission table (live roles) and the token's own roles must both allow ``action``."""
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


def issue_token(
    node: Node,
    issuer: Actor,
    staff: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    roles: tuple[str, ...] | None = None,
) -> tuple[str, Principal]:
    """An administrator of ``issuer.agency`` issues a token for one of its active staff members."""
    node.app.authorise(issuer, Action.ADMINISTER)
    _check_ttl(ttl)
    member = node.app.staff(issuer.agency, staff)
    if not member.active:
        raise InputError("the staff member is deactivated: no token", field="staff")
    held = set(member.roles)
    wanted = {parse_enum(Role, r, "role").value for r in roles} if roles else held
    if not wanted <= held:
        raise InputError(f"the staff member does not hold role(s) {', '.join(sorted(wanted - held))}", field="role")
    principal = Principal(
        Actor(issuer.agency, staff), tuple(sorted(wanted)), node.app.clock() + ttl, secrets.token_hex(8)
    )
    # recorded before the token is handed out: an auditor sees every grant of access, never the token
    node.app.record_token_grant(issuer, staff, principal.roles, principal.expires_at, principal.token_id)
    return _token(node, principal), principal


def issue_own_token(
    node: Node, actor: Actor, *, via: str, factors: tuple[str, ...] = (), ttl: timedelta = DEFAULT_TTL
) -> tuple[str, Principal]:
    """A session for a staff member who has just proven who they are themselves (``via``: how, e.g. ``oidc``;
    ``factors``: what else they proved, e.g. ``("key",)`` for a security key), with the roles they hold now;
    recorded like an administrator's grant, with ``via`` instead of an issuer."""
    _check_ttl(ttl)
    member = node.app.staff(actor.agency, actor.staff)
    if not member.active:
        raise AuthError("staff member deactivated: no session")
    principal = Principal(
        actor, tuple(sorted(member.roles)), node.app.clock() + ttl, secrets.token_hex(8), tuple(sorted(factors))
    )
    node.app.record_sign_in(actor, principal.roles, principal.expires_at, principal.token_id, via)
    return _token(node, principal), principal


def _check_ttl(ttl: timedelta) -> None:
    if not timedelta(seconds=30) <= ttl <= MAX_TTL:
        raise InputError(f"token lifetime must be between 30 seconds and {MAX_TTL}", field="ttl")


def _token(node: Node, principal: Principal) -> str:
    payload = {
        "agency": principal.actor.agency,
        "staff": principal.actor.staff,
        "roles": list(principal.roles),
        "iat": int(node.app.clock().timestamp()),
        "exp": int(principal.expires_at.timestamp()),
        "jti": principal.token_id,
        **({"amr": list(principal.factors)} if principal.factors else {}),
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{PREFIX}.{body}.{_mac(token_secret(node), body)}"


def verify_token(node: Node, token: str) -> Principal:
    """Check MAC, expiry and the staff member's current standing; raise :class:`AuthError` otherwise.

    Every failure says only *that* the token is not accepted and why in general terms: nothing about
    any person's protection can depend on it.
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise AuthError("malformed token: expected fl1.<payload>.<mac> from `flagledger staff token`")
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
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError("token payload is not valid") from exc
    if node.app.clock() >= exp:
        raise AuthError("token expired: ask an administrator for a new one (`flagledger staff token`)")
    if actor.agency not in node.app.hosted:
        raise AuthError("token names an agency not hosted on this node")
    try:
        member = node.app.staff(actor.agency, actor.staff)
    except NotFoundError:
        raise AuthError("token names no enrolled staff member") from None
    if not member.active:
        raise AuthError("staff member deactivated: token no longer accepted")
    return Principal(actor, roles, exp, jti, factors)
