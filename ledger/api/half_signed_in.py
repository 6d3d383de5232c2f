"""Staff keys between the steps of a console sign-in: opened by the password, held only once the second factor
(security key, one-time code) is done.

Between the steps the key is sealed under a fresh random key (:meth:`StaffSigner.seal`): the sealed half stays
in this process, keyed by a random ticket, the key that opens it goes to the browser inside the pending
cookie (HttpOnly, MACed, 5 minutes). Neither side alone opens it, nothing of it is written anywhere, and a
sign-in abandoned after the password leaves only a sealed blob here, forgotten when it expires (or when the
process ends). Whoever reads this process's memory meanwhile learns nothing they could sign with.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time

from ledger.app import Actor
from ledger.app.credentials import StaffSigner

__all__ = ["count", "seal", "take"]

# ticket → (deadline, agency, staff, sealed key): this process's only trace of a half-finished sign-in
_SEALED: dict[str, tuple[float, str, str, bytes]] = {}
_LOCK = threading.Lock()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forget_expired(now: float) -> None:
    for ticket in [t for t, (deadline, *_) in _SEALED.items() if deadline <= now]:
        del _SEALED[ticket]


def seal(signer: StaffSigner, ttl: float) -> str:
    """Keep ``signer`` sealed for ``ttl`` seconds; returns what the browser carries (ticket and opening key,
    base64url, no dots) — the only way to open it."""
    key, sealed = signer.seal()
    ticket = secrets.token_hex(16)
    now = time.monotonic()
    with _LOCK:
        _forget_expired(now)
        _SEALED[ticket] = (now + ttl, signer.agency, signer.staff, sealed)
    return f"{ticket}~{_b64(key)}"


def take(carried: str, actor: Actor) -> StaffSigner | None:
    """The signer sealed for ``actor`` under ``carried`` (once: the sealed half is forgotten), or None if
    there is none (expired, already taken, another person's, or a sign-in that opened no key)."""
    ticket, _, key = carried.partition("~")
    now = time.monotonic()
    with _LOCK:
        _forget_expired(now)
        entry = _SEALED.pop(ticket, None)
    if entry is None or (entry[1], entry[2]) != (actor.agency, actor.staff):
        return None
    return StaffSigner.unseal(
        actor.agency, actor.staff, base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)), entry[3]
    )


def count(agency: str, staff: str, *, now: float | None = None) -> int:
    """How many sealed keys of this person wait here (for tests and operators: never the keys themselves);
    ``now`` (monotonic seconds) forgets the expired ones as of then."""
    with _LOCK:
        _forget_expired(time.monotonic() if now is None else now)
        return sum(1 for _, a, s, _ in _SEALED.values() if (a, s) == (agency, staff))
