"""A node's role — ``agency`` (the default), ``hub`` or ``portal`` — and what a hub or portal data directory holds.

A hub or portal directory has the same layout as an agency's (``config.json`` 0600, ``secrets/``, the key store
of ``ledger.runtime.keystore``) with ``"role"`` in config.json, and:

* **its own keys**, in its key store: an Ed25519 signing key (its name, key id and public half in config.json's
  ``linkage.signing``), an X25519 sealing key (``linkage-sealing.key``, 64 hex digits) and its code secret —
  the portal's codes, the hub's person ids (``linkage-secret.key``), never shared, never published; the hub
  also its VRF key for the flag map's person keys (``linkage-vrf.key``, ledger.runtime.hub_map), whose public
  half its directory entry publishes;
* **its own database**: ``hub.sqlite`` or ``portal.sqlite`` (or ``database_url``: PostgreSQL);
* **the directory** of the parties it knows (``directory.json``): each party's signing key and sealing key as
  published by ``flagledger linkage directory export`` and taken in by ``… import``. The role's own entry is
  always in it. Exchanging the files is the out-of-band step ``agency trust`` is for agencies today;
  publishing them through the key registry's events is left (docs/linkage.md).

The topics' prefix is config.json's ``linkage.topic_prefix`` or ``FLAGLEDGER_LINKAGE_TOPIC_PREFIX``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ledger import clock
from ledger.domain.types import AgencyKind
from ledger.errors import Code, ConfigurationError, InputError
from ledger.files import private_file, write_private
from ledger.hub.log import HubStore, open_hub_store
from ledger.linkage.directory import Directory, check_features
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB, PORTAL, check_party
from ledger.linkage.person_keys import vrf_public_from_hex, vrf_public_hex
from ledger.linkage.sealing import new_sealing_key, public_from_hex, public_hex, sealing_key_from_hex
from ledger.linkage.transport import Topics
from ledger.linkage.wire_keys import delivery_entry, delivery_of
from ledger.log.signing import KeyRecord, key_id_for
from ledger.portal.rotation import utc_text
from ledger.portal.store import PortalStore, open_portal_store
from ledger.portal.wire_keys import WIRE_KEYS_FILE, PortalWireKeys
from ledger.runtime.config import NodeConfig
from ledger.runtime.hub_map import vrf_key
from ledger.runtime.keystore import Keys, open_keystore
from ledger.witness.store import WitnessStore, open_witness_store

__all__ = [
    "LINKAGE_ROLES",
    "ROLES",
    "WITNESS",
    "DirectoryEntry",
    "RoleNode",
    "import_entries",
    "init_role",
    "open_role",
    "role_of",
]

WITNESS = "witness"  # issue #20: named by its own party code (``init --role witness --agency W-KANTO``)
ROLES = ("agency", "hub", "portal", WITNESS)
LINKAGE_ROLES = (HUB, PORTAL, WITNESS)
SEALING = "linkage-sealing.key"
SECRET = "linkage-secret.key"
DIRECTORY_FILE = "directory.json"


def role_of(data_dir: Path) -> str:
    """The role of the node at ``data_dir`` (``agency`` for every directory made before roles existed)."""
    return NodeConfig.load(data_dir).role


# an entry's fields left out of it when empty: an older release's entry has none of them
_OPTIONAL = ("vrf_public_hex", "kind", "delivery_hex", "features")


@dataclass(frozen=True)
class DirectoryEntry:
    """One party's published keys: what another party needs to check its signatures and seal to it."""

    party: str
    key_id: str
    public_hex: str  # Ed25519, raw
    valid_from: str  # ISO 8601 with offset
    sealing_public_hex: str  # X25519, raw
    vrf_public_hex: str = ""  # the hub's alone: its VRF public key (DER, hex; ledger.runtime.hub_map)
    # an agency's alone: its AgencyKind, as the hub's administrator accepted it at import (docs/linkage.md)
    kind: str = ""
    # the portal's alone: its current delivery key, "KEY_ID:X25519 public hex" (ledger.linkage.wire_keys)
    delivery_hex: str = ""
    # an agency's alone: the protocol features its release understands, comma-separated (ledger.linkage.directory
    # FEATURES: ``hub_seq``); "" from an older release — the hub then sends it none of them
    features: str = ""

    def checked(self) -> DirectoryEntry:
        check_party(self.party)
        if self.features:
            if self.party in (HUB, PORTAL):
                raise InputError("only an agency's entry names features", code=Code.MALFORMED, field="features")
            check_features(self.features)
        if self.kind:
            if self.party in (HUB, PORTAL):
                raise InputError("only an agency's entry names a kind", code=Code.MALFORMED, field="kind")
            if self.kind not in set(AgencyKind):
                known = ", ".join(AgencyKind)
                raise InputError(f"kind must be one of {known}, not {self.kind!r}", code=Code.MALFORMED, field="kind")
        if self.delivery_hex:
            if self.party != PORTAL:
                raise InputError("only the portal publishes a delivery key", code=Code.MALFORMED, field="delivery_hex")
            delivery_of(self.delivery_hex)
        if self.vrf_public_hex:
            if self.party != HUB:
                raise InputError("only the hub publishes a VRF key", code=Code.MALFORMED, field="vrf_public_hex")
            vrf_public_from_hex(self.vrf_public_hex)
        try:
            raw = bytes.fromhex(self.public_hex)
        except ValueError:
            raise InputError("public_hex must be hex", code=Code.MALFORMED, field="public_hex") from None
        if len(raw) != 32 or key_id_for(self.party, raw) != self.key_id:
            raise InputError(f"the key id does not match {self.party}'s public key", code=Code.MALFORMED)
        public_from_hex(self.sealing_public_hex)
        self.since()
        return self

    def since(self) -> datetime:
        try:
            at = datetime.fromisoformat(self.valid_from)
        except ValueError:
            raise InputError("valid_from must be an ISO 8601 time", code=Code.MALFORMED, field="valid_from") from None
        if at.tzinfo is None:
            raise InputError("valid_from needs a UTC offset", code=Code.MALFORMED, field="valid_from")
        return at

    @classmethod
    def parse(cls, raw: Any) -> DirectoryEntry:
        names = {"party", "key_id", "public_hex", "valid_from", "sealing_public_hex"}
        if isinstance(raw, dict) and "vrf_public_hex" in raw:
            names.add("vrf_public_hex")  # the hub's entry: checked to be the hub's
        if isinstance(raw, dict) and "kind" in raw:
            names.add("kind")  # an agency's entry: checked to be an agency's, of a known kind
        if isinstance(raw, dict) and "delivery_hex" in raw:
            names.add("delivery_hex")  # the portal's entry: its delivery key
        if isinstance(raw, dict) and "features" in raw:
            names.add("features")  # an agency's entry: what its release understands
        if not isinstance(raw, dict) or set(raw) != names or not all(isinstance(v, str) for v in raw.values()):
            raise InputError(f"a directory entry holds exactly {sorted(names)}, as text", code=Code.MALFORMED)
        return cls(**raw).checked()

    def as_json(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v or k not in _OPTIONAL}

    def vrf_public_key(self) -> RSAPublicKey:
        """The hub's VRF public key, for an agency's ``MapChecks``; ``configuration`` if this entry has none."""
        if not self.vrf_public_hex:
            raise ConfigurationError(f"{self.party}'s directory entry publishes no VRF key")
        return vrf_public_from_hex(self.vrf_public_hex)


@dataclass
class RoleNode:
    """A hub's or portal's data directory opened: its configuration, keys, directory and database."""

    config: NodeConfig
    keys: PartyKeys
    own: DirectoryEntry
    vrf: RSAPrivateKey | None = None  # the hub's VRF key (ledger.runtime.hub_map); None for the portal

    @property
    def role(self) -> str:
        return self.config.role

    @property
    def directory_path(self) -> Path:
        return self.config.data_dir / DIRECTORY_FILE

    def entries(self) -> list[DirectoryEntry]:
        """The role's own entry and every one imported."""
        path = self.directory_path
        found = [self.own]
        if path.exists():
            try:
                raw = json.loads(path.read_text())
            except ValueError as exc:
                raise ConfigurationError(f"{path} is not valid JSON: {exc}") from exc
            found += [DirectoryEntry.parse(e) for e in raw if e.get("party") != self.own.party]
        return found

    def directory(self) -> Directory:
        d = Directory()
        for e in self.entries():
            kind = AgencyKind(e.kind) if e.kind else None
            record = KeyRecord(e.party, e.key_id, e.public_hex, e.since())
            d.add(record, public_from_hex(e.sealing_public_hex), kind, check_features(e.features))
            if e.delivery_hex:
                d.delivery[e.party] = delivery_of(e.delivery_hex)
        return d

    def directory_stamp(self) -> float:
        """When the directory file last changed (0: never imported): a running loop reloads it on a change."""
        try:
            return os.stat(self.directory_path).st_mtime
        except FileNotFoundError:
            return 0.0

    def topics(self) -> Topics:
        prefix = os.environ.get("FLAGLEDGER_LINKAGE_TOPIC_PREFIX") or self.config.linkage.get("topic_prefix")
        return Topics(prefix) if prefix else Topics()

    def database_url(self) -> str:
        if self.config.database_url:
            return self.config.views_url()
        return f"sqlite:///{self.config.data_dir / (self.role + '.sqlite')}"

    def hub_store(self, who: str | None = None) -> HubStore:
        self._require(HUB)
        return open_hub_store(self.database_url(), who or f"hub@{os.uname().nodename}:{os.getpid()}")

    def portal_store(self) -> PortalStore:
        self._require(PORTAL)
        return open_portal_store(self.database_url())

    def wire_keys(self) -> PortalWireKeys:
        """The portal's key file of the providers' wire keys (``ledger.portal.wire_keys``), wrapped by its
        key-encryption key (in the token with ``pkcs11``)."""
        self._require(PORTAL)
        return PortalWireKeys(self.config.data_dir / WIRE_KEYS_FILE, Keys(open_keystore(self.config)).data_wrapper())

    def witness_store(self) -> WitnessStore:
        self._require(WITNESS)
        return open_witness_store(self.database_url())

    def _require(self, role: str) -> None:
        if self.role != role:
            raise ConfigurationError(f"{self.config.data_dir} is a {self.role} node, not the {role}")


def init_role(
    data_dir: Path, role: str, database_url: str | None = None, topic_prefix: str | None = None, party: str = ""
) -> RoleNode:
    """A new hub, portal or witness data directory: config.json, its signing and sealing keys and its code
    secret. A witness is named by ``party`` (a code like an agency's); the hub and the portal by their role."""
    if role not in LINKAGE_ROLES:
        raise InputError(f"init makes a {' or '.join(LINKAGE_ROLES)} directory here, not {role!r}", field="role")
    party = _party(role, party)
    if (data_dir / "config.json").exists():
        raise ConfigurationError(f"{data_dir} is already a flagledger data directory")
    config = NodeConfig(data_dir, database_url=database_url, role=role)
    if topic_prefix:
        config.linkage["topic_prefix"] = topic_prefix
    if role == WITNESS:
        config.linkage["party"] = party
    config.save()
    if not database_url:
        private_file(data_dir / f"{role}.sqlite")  # 0600 first: SQLite gives its -wal and -shm files this mode
    keys = Keys(open_keystore(config))
    name, signer = keys.new_signer(party)
    sealing_hex, _ = new_sealing_key()
    keys.store.create(SEALING, sealing_hex)
    keys.store.new_hmac_key(SECRET)  # with pkcs11 made inside the token, and used there (its HMAC)
    if role == HUB:
        vrf_key(keys.store)  # the flag map's person keys (ledger.runtime.hub_map)
    config.linkage["signing"] = {
        "key_id": signer.key_id,
        "public_hex": signer.public_raw.hex(),
        "valid_from": clock.now().isoformat(),
        "file": name,
    }
    config.save()
    return open_role(data_dir)


def open_role(data_dir: Path) -> RoleNode:
    config = NodeConfig.load(data_dir)
    if config.role not in LINKAGE_ROLES:
        raise ConfigurationError(f"{data_dir} is an agency node: it has no hub or portal role")
    signing = config.linkage.get("signing")
    if not isinstance(signing, dict):
        raise ConfigurationError(f"{config.path} names no signing key of the {config.role}")
    keys = Keys(open_keystore(config))
    signer = keys.signer(_party(config.role, str(config.linkage.get("party", ""))), str(signing["file"]))
    try:
        sealing = sealing_key_from_hex(keys.store.get(SEALING))
    except InputError as exc:
        raise ConfigurationError(f"cannot read the {config.role}'s sealing key: {exc}") from exc
    # the code secret (the hub's person ids, the portal's codes) as its HMAC, computed where it lives
    secret = keys.secret_hash(SECRET, f"{config.role}'s code secret")
    # a hub directory made before the flag map gets its VRF key now (export the entry again to publish it)
    vrf = vrf_key(keys.store) if config.role == HUB else None
    own = DirectoryEntry(
        signer.agency,
        signer.key_id,
        signer.public_raw.hex(),
        str(signing["valid_from"]),
        public_hex(sealing.public_key()),
        "" if vrf is None else vrf_public_hex(vrf.public_key()),
        delivery_hex=_delivery(config, keys) if config.role == PORTAL else "",
    )
    return RoleNode(config, PartyKeys(signer, sealing, secret), own, vrf)


def _delivery(config: NodeConfig, keys: Keys) -> str:
    """The portal's current delivery key as its entry publishes it (made on the first open)."""
    wires = PortalWireKeys(config.data_dir / WIRE_KEYS_FILE, keys.data_wrapper())
    try:
        if wires.newest() is None:
            wires.rotate(utc_text(clock.now()))
        newest = wires.newest()
    finally:
        wires.close()
    assert newest is not None
    key_id, public, serial, _, _ = newest
    return delivery_entry(key_id, public, serial)  # with its serial: an agency refuses older announcements


def _party(role: str, party: str) -> str:
    if role != WITNESS:
        return role
    if not party or party in (HUB, PORTAL):
        raise InputError("a witness is named by its own code (--agency), not hub or portal", field="agency")
    return check_party(party, "agency")


def import_entries(node: RoleNode, raw: Any, kind: str = "") -> list[str]:
    """Take in published entries (one, or a list); an entry of a party already known replaces it. Returns the
    parties taken in; nothing is kept unless every entry is valid.

    An agency's kind is what the administrator importing accepts: the kind its entry names, or ``kind`` (for
    one entry that names none, or names the same) — the hub then trusts a move only from a municipality and a
    protection request only from a protection body. An entry whose kind contradicts ``kind`` is refused."""
    given = [DirectoryEntry.parse(e) for e in (raw if isinstance(raw, list) else [raw])]
    if kind:
        if len(given) != 1:
            raise InputError("--kind vouches for one entry at a time", field="kind")
        if given[0].kind and given[0].kind != kind:
            raise InputError(
                f"{given[0].party}'s entry says it is a {given[0].kind}, not a {kind}: nothing was imported",
                code=Code.MALFORMED,
                field="kind",
            )
        given = [replace(given[0], kind=kind).checked()]
    if any(e.party == node.own.party for e in given):
        raise InputError(f"the {node.own.party}'s own keys are not imported", field="party")
    kept = {e.party: e for e in node.entries()[1:]}
    kept.update({e.party: e for e in given})
    write_private(node.directory_path, json.dumps([e.as_json() for e in kept.values()], indent=2) + "\n")
    return [e.party for e in given]
