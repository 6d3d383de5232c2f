"""The hub's person-id secret behind the key-store interface: the loop asks for a person id, not for the secret.

The hub's person id of a number is ``"h" + HMAC-SHA256(hub secret, …)`` (``ledger.linkage.codes.hub_person``).
Whoever holds that secret can compute the person id of every possible number — about 10^11 HMACs, a day on one
core — and so turn the hub's whole code map back into numbers. So the secret is kept where the node keeps its
other secrets, a :class:`ledger.runtime.keystore.KeyStore`, under :data:`HUB_PERSON_KEY`, and
:class:`KeyStorePersonIds` asks the store for the HMAC of each registration: with the file backend the store
reads the secret for that one HMAC; with the PKCS#11 backend the secret is a non-extractable key in the token
and the HMAC is computed inside it (``CKM_SHA256_HMAC``), so the hub's process never holds it.

``ledger.hub`` sits below ``ledger.runtime`` (the bootstrap opens the hub), so the key store is taken by its
shape (:class:`SecretSource`), which every ``KeyStore`` has.
"""

from __future__ import annotations

from typing import Protocol

from ledger.linkage.codes import hub_person
from ledger.log.keyed_hash import KeyedHash

__all__ = ["HUB_PERSON_KEY", "KeyStorePersonIds", "SecretSource", "ensure_person_key"]

HUB_PERSON_KEY = "hub-person-id.key"


class SecretSource(Protocol):
    """The part of ``ledger.runtime.keystore.KeyStore`` the hub uses."""

    def new_hmac_key(self, name: str) -> None: ...

    def hmac(self, name: str, data: bytes) -> bytes: ...


def ensure_person_key(store: SecretSource, name: str = HUB_PERSON_KEY) -> None:
    """Make the hub's person-id secret in ``store`` unless it is there (the first of two racing hubs wins)."""
    store.new_hmac_key(name)


class KeyStorePersonIds:
    """number → the hub's person id, the HMAC computed by ``store`` for each call."""

    def __init__(self, store: SecretSource, name: str = HUB_PERSON_KEY) -> None:
        self.store = store
        self.name = name

    def __call__(self, number: str) -> str:
        return hub_person(KeyedHash(lambda data: self.store.hmac(self.name, data), self.name), number)
