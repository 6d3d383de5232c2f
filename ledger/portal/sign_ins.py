"""Signing a card in over HTTP, and reading a page with the session it gives (issue 19; the routes are
``ledger.api.portal``).

1. :meth:`CardSignIns.challenge`: 32 random bytes, kept server-side by their SHA-256 with a short expiry
   (``challenge_seconds``, default 120 s); expired ones are swept at each new one.
2. :meth:`CardSignIns.sign_in`: the challenge is **taken first** — deleted by the one request that names it, so a
   replay, a second try with another signature, or a concurrent duplicate finds none (``challenge_unknown``) —
   then the card is checked (``ledger.portal.cards.verify``: issuer, certificate signature, validity, the
   issuer's revocations, the card's signature over the challenge), the number it carries opened and mapped to
   the portal's code (``ledger.portal.service.sign_in``: the first time, its registration is owed to the hub).
   A session is made: a random bearer token, kept only as its SHA-256, with the code, the certificate's issuer
   and serial, and an expiry (``session_seconds``, default 600 s).
3. :meth:`CardSignIns.page`: the session's own page, as ``self`` or ``guardian`` (``ledger.portal.rules``);
   :meth:`CardSignIns.proxy_page`: a proxy signed in with their own card names the person by number. The person's
   number is only mapped to its code here, never registered (a number typed by someone else signs no one in),
   and a proxy not listed on the page, a number with no page and a replaced number's page all answer the same
   ``proxy_refused``: a proxy learns nothing of whether the person exists, signed in or is protected.

A revocation listed after a sign-in ends the session at its next use (``card_revoked``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from ledger import clock
from ledger.errors import AuthError, Code, ConfigurationError, InputError, PermissionDenied, StorageError
from ledger.linkage.codes import portal_code
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.portal.cards import Revocations, verify
from ledger.portal.rules import PortalView, view
from ledger.portal.service import sign_in
from ledger.portal.store import PortalStore
from ledger.portal.tables import portal_card_revocations, portal_challenges, portal_sessions
from ledger.storage import storage_error

__all__ = ["CardSignIns", "Session", "SignInSettings"]

CHALLENGE_BYTES = 32
MAX_OPEN_CHALLENGES = 100_000  # beyond this (live ones), new sign-ins wait: a flood fills no disk


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@dataclass(frozen=True)
class SignInSettings:
    """config.json's ``linkage.card_sign_in``: how long a challenge (default 120 s) and a session (600 s) last."""

    challenge_seconds: float = 120.0
    session_seconds: float = 600.0

    @classmethod
    def from_linkage(cls, linkage: dict[str, Any]) -> SignInSettings:
        raw = linkage.get("card_sign_in", {})
        if not isinstance(raw, dict) or set(raw) - {"challenge_seconds", "session_seconds"}:
            raise ConfigurationError("linkage.card_sign_in names challenge_seconds and session_seconds only")
        try:
            made = cls(**{k: float(v) for k, v in raw.items()})
        except (TypeError, ValueError):
            raise ConfigurationError("linkage.card_sign_in's times are numbers of seconds") from None
        if not (1 <= made.challenge_seconds <= 600 and 1 <= made.session_seconds <= 3600):
            raise ConfigurationError(
                "linkage.card_sign_in: a challenge lasts 1 to 600 seconds, a session 1 to 3600 (short-lived)"
            )
        return made


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: str


class CardSignIns:
    def __init__(
        self,
        store: PortalStore,
        keys: PartyKeys,
        directory: Callable[[], Directory],
        issuers: Callable[[], dict[str, Ed25519PublicKey]],
        settings: SignInSettings = SignInSettings(),
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        """``directory`` and ``issuers`` are read at each sign-in (a running portal's files change)."""
        self.store, self.keys, self.directory, self.issuers = store, keys, directory, issuers
        self.settings, self.now = settings, now

    @property
    def engine(self) -> Engine:
        return self.store.engine

    # -- challenges ------------------------------------------------------------------------------------
    def challenge(self) -> tuple[str, str]:
        """A new challenge (hex) and when it expires (ISO 8601, UTC)."""
        raw = secrets.token_bytes(CHALLENGE_BYTES)
        now = _ms(self.now())
        expires = now + int(self.settings.challenge_seconds * 1000)
        c = portal_challenges.c
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(portal_challenges).where(c.expires_ms <= now))
                if (
                    conn.execute(select(func.count()).select_from(portal_challenges)).scalar_one()
                    >= MAX_OPEN_CHALLENGES
                ):
                    # a flood of challenges (anyone may ask) fills no disk: 503, as a busy server answers
                    raise StorageError("too many sign-ins are in progress: try again shortly", code=Code.STOPPING)
                conn.execute(insert(portal_challenges).values(digest=_digest(raw), expires_ms=expires))
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep a sign-in challenge", exc, "nothing was kept") from exc
        return raw.hex(), _at(expires)

    def _take(self, challenge_hex: str) -> bytes:
        """The challenge's bytes if it was handed out, is unused and not expired; it is used up either way."""
        try:
            raw = bytes.fromhex(challenge_hex)
        except ValueError:
            raise InputError("the challenge is not hex", field="challenge") from None
        c = portal_challenges.c
        try:
            with self.engine.begin() as conn:
                expires = conn.execute(select(c.expires_ms).where(c.digest == _digest(raw))).scalar()
                taken = conn.execute(delete(portal_challenges).where(c.digest == _digest(raw))).rowcount
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the sign-in challenges", exc) from exc
        if expires is None or taken != 1:  # never handed out, or another request took it first
            raise AuthError(
                "the challenge is unknown or was used already: ask for a new one", code=Code.CHALLENGE_UNKNOWN
            )
        if int(expires) <= _ms(self.now()):
            raise AuthError("the challenge expired: ask for a new one", code=Code.CHALLENGE_EXPIRED)
        return raw

    # -- sign-in and sessions --------------------------------------------------------------------------
    def sign_in(self, challenge_hex: str, certificate: str, signature_hex: str) -> Session:
        raw = self._take(challenge_hex)
        holder = verify(
            certificate,
            signature_hex,
            raw,
            portal=self.keys.name,
            issuers=self.issuers(),
            sealing=self.keys.sealing,
            revoked=self.revoked,
            now=self.now(),
        )
        code = sign_in(self.store, self.keys, self.directory(), holder.number)
        token = secrets.token_urlsafe(32)
        expires = _ms(self.now()) + int(self.settings.session_seconds * 1000)
        s = portal_sessions.c
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(portal_sessions).where(s.expires_ms <= _ms(self.now())))
                conn.execute(
                    insert(portal_sessions).values(
                        digest=_digest(token.encode()),
                        code=code,
                        issuer=holder.issuer,
                        serial=holder.serial,
                        expires_ms=expires,
                    )
                )
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep the session", exc, "nobody was signed in") from exc
        return Session(token, _at(expires))

    def code_of(self, token: str) -> str:
        """The portal code of the card the session signed in; AuthError if there is no live one."""
        s = portal_sessions.c
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(s.code, s.issuer, s.serial, s.expires_ms).where(s.digest == _digest(token.encode()))
                ).first()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the sessions", exc) from exc
        if row is None:
            raise AuthError("sign in with your card first", code=Code.UNAUTHENTICATED)
        if int(row.expires_ms) <= _ms(self.now()):
            raise AuthError("the session ended: sign in with your card again", code=Code.SESSION_ENDED)
        if self.revoked(str(row.issuer), str(row.serial)):
            raise PermissionDenied("this card was revoked by its issuer", code=Code.CARD_REVOKED)
        return str(row.code)

    def sign_out(self, token: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(portal_sessions).where(portal_sessions.c.digest == _digest(token.encode())))
        except SQLAlchemyError as exc:
            raise storage_error("cannot end the session", exc) from exc

    # -- pages -------------------------------------------------------------------------------------------
    def page(self, token: str, viewer: str = "self") -> PortalView:
        """The session's own card's page, as the person (``self``) or their guardian."""
        if viewer not in ("self", "guardian"):
            raise InputError("a viewer with the person's own card is self or guardian", field="viewer")
        return view(self.store.page(self.code_of(token)), viewer)

    def proxy_page(self, token: str, number: str) -> PortalView:
        """The page of the person with ``number``, for the proxy whose own card the session signed in."""
        proxy = self.code_of(token)
        page = self.store.page(portal_code(self.keys.secret, number))
        if page is None or proxy not in page.proxies:
            raise PermissionDenied("not a proxy of this person", code=Code.PROXY_REFUSED)
        return view(page, "proxy", proxy)

    # -- revocations -------------------------------------------------------------------------------------
    def revoked(self, issuer: str, serial: str) -> bool:
        r = portal_card_revocations.c
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(r.serial).where(r.issuer == issuer, r.serial == serial)).first()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the card revocations", exc) from exc
        return found is not None

    def take_revocations(self, text: str) -> int:
        """Keep an issuer's signed revocation list (checked under its trusted key); returns the serials new here."""
        made = Revocations.checked(text, self.issuers())
        new = 0
        for serial in made.serials:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(portal_card_revocations).values(
                            issuer=made.issuer, serial=serial, listed_at=self.now().astimezone(UTC).isoformat()
                        )
                    )
                new += 1
            except SqlIntegrityError:
                continue  # listed before
            except SQLAlchemyError as exc:
                raise storage_error("cannot keep the card revocations", exc) from exc
        return new
