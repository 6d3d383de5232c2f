"""The hub's person-id secret behind the key-store interface: the loop asks for a person id, not for the secret.

The hub's person id of a number is ``"h" + HMAC-SHA256(hub secret, …)`` (``ledger.linkage.codes.hub_person``).
Whoever holds that secret can compute the person id of every possible number — about 10^11 HMACs, a day on one
core — and so turn the hub's whole code map back into numbers. So the secret is kept where the node keeps its
other secrets, a :class:`ledger.runtime.keystore.KeyStore` (a file today; a device with the PKCS#11 backend),
under :data:`HUB_PERSON_KEY`, and :class:`KeyStorePersonIds` fetches it for each registration and drops it:
the hub's process holds no copy between registrations, and ``PartyKeys.secret`` may stay empty.

``ledger.hub`` sits below ``ledger.runtime`` (the bootstrap opens the hub), so the key store is taken by its
shape (:class:`SecretSource`), which every ``KeyStore`` has. A device that computes the HMAC inside itself
(the secret never leaving it) needs an HMAC operation on ``KeyStore``: not there yet (docs/accountable-hub.md).
"""

from __future__ import annotations

import secrets
from typing import Protocol

from ledger.errors import ConfigurationError
from ledger.linkage.codes import SECRET_BYTES, hub_person

__all__ = ["HUB_PERSON_KEY", "KeyStorePersonIds", "SecretSource", "ensure_person_key"]

HUB_PERSON_KEY = "hub-person-id.key"


class SecretSource(Protocol):
    """The part of ``ledger.runtime.keystore.KeyStore`` the hub uses."""

    def get(self, name: str) -> str: ...

    def create(self, name: str, value: str) -> None: ...


def ensure_person_key(store: SecretSource, name: str = HUB_PERSON_KEY) -> None:
    """Make the hub's person-id secret in ``store`` unless it is there (the first of two racing hubs wins)."""
    store.create(name, secrets.token_hex(SECRET_BYTES))


class KeyStorePersonIds:
    """number → the hub's person id, the secret fetched from ``store`` for each call."""

    def __init__(self, store: SecretSource, name: str = HUB_PERSON_KEY) -> None:
        self.store = store
        self.name = name

    def __call__(self, number: str) -> str:
        try:
            secret = bytes.fromhex(self.store.get(self.name))
        except ValueError:
            raise ConfigurationError(f"the hub's person-id secret {self.name} is not hex") from None
        return hub_person(secret, number)
