"""The hub's flag map switched on in its node (issue #20): its VRF key in the key store, and the map's settings.

* **The VRF key** (``linkage-vrf.key``: an RSA-2048 private key, e = 65537, PKCS#8 DER in base64) is made at
  ``init --role hub`` — or when a hub directory made before it is opened — and kept in the hub's key store like
  its sealing key (the file backend, or sealed by the token with the ``pkcs11`` backend). Only its public half
  leaves: in the hub's directory entry (``vrf_public_hex``, ``linkage directory export``), which agencies take
  in to check the VRF proofs of their registrations (``ledger.linkage.person_keys``).
* **Settings** (:class:`MapSettings`): config.json's ``linkage.map`` section, overridden by the environment —
  ``head_every_seconds`` (``FLAGLEDGER_MAP_HEAD_EVERY_SECONDS``, default 10): the hub signs a head at least
  this often (a heartbeat); ``max_age_seconds`` (``FLAGLEDGER_MAP_MAX_AGE_SECONDS``, default 60): an agency
  answers automatically only under a head no older than this by its clock. Keep ``max_age`` well above
  ``head_every`` (a provider then never waits on a heartbeat); ``max_age`` is the agency node's to read.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import Field

from ledger.errors import ConfigurationError
from ledger.runtime.keystore import KeyStore
from ledger.settings import Section, section_config

__all__ = ["VRF", "MapSettings", "read_vrf_key", "vrf_key"]

VRF = "linkage-vrf.key"


class MapSettings(Section):
    """The flag map's timing: the hub's head interval and the agencies' freshness bound (see the module)."""

    model_config = section_config("FLAGLEDGER_MAP_")
    section: ClassVar[str] = "linkage.map"

    head_every_seconds: float = Field(10.0, gt=0, le=3600)
    max_age_seconds: float = Field(60.0, gt=0, le=86400)
    # cosignatures of the agency's own linkage.witnesses a head needs before an automatic answer (None: 1 when
    # witnesses are configured, else 0), and how long a change may go unshown or heads uncosigned
    witness_quorum: int | None = Field(None, ge=0, le=16)
    witness_deadline_seconds: float = Field(300.0, gt=0, le=86400)

    @classmethod
    def from_linkage(cls, linkage: dict[str, Any], **options: Any) -> MapSettings:
        raw = linkage.get("map", {})
        if not isinstance(raw, dict):
            raise ConfigurationError("config.json's linkage.map must be an object")
        return cls.load(raw, **options)


def _new() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def read_vrf_key(store: KeyStore) -> rsa.RSAPrivateKey:
    """The hub's VRF key from its key store; ``configuration`` if it is missing or not one."""
    try:
        key = serialization.load_der_private_key(base64.b64decode(store.get(VRF), validate=True), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot read the hub's VRF key ({store.where(VRF)}): {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"the hub's VRF key ({store.where(VRF)}) is not an RSA key")
    return key


def vrf_key(store: KeyStore) -> rsa.RSAPrivateKey:
    """The hub's VRF key, made first if the store has none (the first of two racing makers wins)."""
    if not store.exists(VRF):
        store.create(VRF, _new())
    return read_vrf_key(store)
