"""The process's sessions with PKCS#11 tokens (ledger.runtime.pkcs11_keystore), and the token's PIN.

One session per token per process, logged in once and shared under a lock: PKCS#11 sessions are not safe to
use from two threads at once, and closing any logged-in session logs out every session of the process. The PIN
is read from ``FLAGLEDGER_PKCS11_PIN`` or the file ``keys.pkcs11_pin_file`` names, never from config.json.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import ConfigurationError

__all__ = ["TokenSession", "open_token_session", "pkcs11_module", "read_pin"]

T = TypeVar("T")


def pkcs11_module() -> Any:
    """python-pkcs11, imported when a pkcs11 store is opened (the file backend needs no native library)."""
    try:
        import pkcs11
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigurationError(f"keys.backend is pkcs11 but python-pkcs11 cannot be imported: {exc}") from exc
    return pkcs11


class TokenSession:
    """The process's one logged-in session with a token, used under a lock."""

    def __init__(self, session: Any, label: str, pin: str) -> None:
        self.session = session
        self.label = label
        self.lock = threading.Lock()
        self._pin = hashlib.sha256(pin.encode()).digest()  # a later opener in the process must know the PIN too
        self.kek: Any = None  # the key-encryption key's handle once found: a search reads the token's store

    def knows(self, pin: str) -> bool:
        return hmac.compare_digest(self._pin, hashlib.sha256(pin.encode()).digest())

    def run(self, what: str, work: Callable[[Any], T]) -> T:
        pkcs11 = pkcs11_module()
        with self.lock:
            try:
                return work(self.session)
            except pkcs11.exceptions.PKCS11Error as exc:
                raise ConfigurationError(
                    f"the PKCS#11 token {self.label!r} refused to {what}: {type(exc).__name__} {exc}".rstrip()
                ) from exc


_LIBS: dict[str, Any] = {}
_SESSIONS: dict[tuple[str, str], TokenSession] = {}
_OPEN_LOCK = threading.Lock()


def open_token_session(module: str, token: str, pin: str) -> TokenSession:
    """The process's session with ``token`` of the PKCS#11 ``module`` (a shared library path), logged in."""
    pkcs11 = pkcs11_module()
    with _OPEN_LOCK:
        found = _SESSIONS.get((module, token))
        if found is not None:
            if not found.knows(pin):
                raise ConfigurationError(f"the PIN of PKCS#11 token {token!r} was refused")
            return found
        try:
            lib = _LIBS.get(module)
            if lib is None:
                lib = _LIBS[module] = pkcs11.lib(module)
            session = lib.get_token(token_label=token).open(user_pin=pin, rw=True)
        except pkcs11.exceptions.NoSuchToken:
            raise ConfigurationError(
                f"no PKCS#11 token labelled {token!r} in {module} (keys.pkcs11_token): initialise it first"
            ) from None
        except pkcs11.exceptions.PinIncorrect:
            raise ConfigurationError(f"the PIN of PKCS#11 token {token!r} was refused") from None
        except (OSError, RuntimeError, pkcs11.exceptions.PKCS11Error) as exc:
            raise ConfigurationError(
                f"cannot open PKCS#11 token {token!r} with {module} (keys.pkcs11_module): {type(exc).__name__} {exc}"
            ) from exc
        opened = _SESSIONS[(module, token)] = TokenSession(session, token, pin)
        return opened


def read_pin(pin_file: str) -> str:
    """The token's user PIN: ``FLAGLEDGER_PKCS11_PIN``, else the file ``pin_file`` names; never config.json."""
    pin = os.environ.get("FLAGLEDGER_PKCS11_PIN", "")
    if pin:
        return pin
    if not pin_file:
        raise ConfigurationError(
            "keys.backend is pkcs11 but no PIN is given: set FLAGLEDGER_PKCS11_PIN or FLAGLEDGER_PKCS11_PIN_FILE "
            "(keys.pkcs11_pin_file names a file; the PIN itself is never kept in config.json)"
        )
    try:
        pin = Path(pin_file).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the PKCS#11 PIN file {pin_file}: {exc}") from exc
    if not pin:
        raise ConfigurationError(f"the PKCS#11 PIN file {pin_file} is empty")
    return pin
