"""An agency node's linkage mode (issue 19): ``shared`` (today's national pseudonym, envelopes on one topic) or
``hub`` (the agency knows a person only by its own code and talks only to the hub).

config.json::

    "linkage": {"mode": "hub",
                "hub": {"party": "hub", "key_id": "...", "public_hex": "...", "valid_from": "...",
                        "sealing_public_hex": "..."},
                "portal": {"party": "portal", ...the same fields...}}

In hub mode:

* the node hosts exactly one agency, and its **subjects are that agency's own codes**
  (``ledger.linkage.codes.agency_code``) under its own secret ``AGENCY-code.key`` — spelled as a pseudonym,
  ``"p"`` + the code's 32 hex digits, so every part of the node that names a person keeps working unchanged.
  The shared pseudonym secret is never read;
* its sealing key (X25519) is ``linkage-sealing.key``; both secrets are made once, on the first opening in hub
  mode, and must be backed up with the data directory (a new code secret would file everyone anew);
* when a number is typed, the person's registration (its code and the number) is sealed to the hub at once and
  kept (``linkage_registrations``): the node cannot open it again and holds no number; the bridge
  (``consumers/linkage_bridge.py``) sends it before the first act about the person. Beside it, when the hub
  publishes its VRF key, a keyed check of the proof the hub will answer with (``person_check``), so the
  bridge checks that proof without the number (``consumers/linkage_map.py``);
* its provision records go to the hub with their contents sealed to the **portal** (the hub cannot read them:
  docs/accountable-hub.md), so the portal's published entry is ``linkage.portal``; without it the records wait,
  the loop raising an alarm, until it is there.
"""

from __future__ import annotations

import secrets as pysecrets
import threading
import uuid
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from ledger.app import FlagLedger
from ledger.errors import ConfigurationError, FlagLedgerError, InputError
from ledger.linkage.codes import Registration, agency_code
from ledger.linkage.directory import FEATURES, Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB, PORTAL, check_party
from ledger.linkage.person_keys import person_key_check, vrf_public_from_hex
from ledger.linkage.sealing import public_from_hex, public_hex, seal, sealing_key_from_hex
from ledger.linkage.wire_keys import delivery_of, delivery_serial
from ledger.log.keyed_hash import KeyedHash
from ledger.log.pseudonym import Pseudonymizer
from ledger.log.signing import KeyRecord
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import Keys
from ledger.runtime.tables import linkage_registrations

__all__ = [
    "MODES",
    "SEALING",
    "AgencyCodes",
    "HubEntry",
    "code_of",
    "code_secret_name",
    "hosted_agency",
    "hub_mode",
    "linkage_directory",
    "party_keys",
    "published",
    "published_entry",
    "refuse_in_hub_mode",
    "subject_of",
    "witness_entries",
]

MODES = ("shared", "hub")
SEALING = "linkage-sealing.key"


class Node(Protocol):
    """What this module reads of a node (``ledger.runtime.bootstrap.Node``, which wires it: named by shape)."""

    config: NodeConfig
    app: FlagLedger
    engine: Engine
    keys: Keys


def code_secret_name(agency: str) -> str:
    return f"{agency}-code.key"


def subject_of(code: str) -> str:
    """The node's subject for its own agency code: the same digits, spelled as a pseudonym."""
    return "p" + code[1:]


def code_of(subject: str) -> str:
    """The agency code a hub-mode subject spells."""
    return "a" + subject[1:]


@dataclass(frozen=True)
class HubEntry:
    """What an agency node knows of the hub: its signing key and its sealing key, as published."""

    key_id: str
    public_hex: str
    sealing_public_hex: str
    valid_from: str
    vrf_public_hex: str = ""  # the flag map's VRF key (ledger.runtime.hub_map); "" from a hub without it
    delivery_hex: str = ""  # the portal's delivery key (ledger.linkage.wire_keys); "" from a portal without it

    @classmethod
    def of(cls, raw: Any, party: str = HUB) -> HubEntry:
        """The hub's (or ``party``'s) directory entry as `linkage directory export` prints it (``party``
        optional)."""
        try:
            if raw.get("party", party) != party:
                raise ValueError(f"not the {party}'s entry")
            entry = cls(**{k: str(raw[k]) for k in ("key_id", "public_hex", "sealing_public_hex", "valid_from")})
            entry = replace(entry, vrf_public_hex=str(raw.get("vrf_public_hex", "")))
            entry = replace(entry, delivery_hex=str(raw.get("delivery_hex", "")))
            if entry.delivery_hex:
                delivery_of(entry.delivery_hex)
            datetime.fromisoformat(entry.valid_from)
            public_from_hex(entry.sealing_public_hex)
        except (AttributeError, KeyError, TypeError, ValueError, FlagLedgerError) as exc:
            raise ConfigurationError(
                f"linkage.{party} must hold the {party}'s key_id, public_hex, sealing_public_hex and valid_from"
            ) from exc
        return entry


def _mode(config: NodeConfig) -> str:
    mode = str(config.linkage.get("mode", "shared"))
    if mode not in MODES:
        raise ConfigurationError(f"linkage.mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def hub_mode(config: NodeConfig) -> bool:
    return _mode(config) == "hub"


def refuse_in_hub_mode(config: NodeConfig, what: str) -> None:
    """The shared topic is not this node's in hub mode: publishing there would hand every agency its acts."""
    if hub_mode(config):
        raise ConfigurationError(
            f"{what} is for shared mode; this node is in linkage hub mode and talks to the hub only"
        )


def hosted_agency(config: NodeConfig) -> str:
    """The one agency a hub-mode node hosts: codes are per agency, and the node has one subject space."""
    if len(config.agencies) != 1:
        raise ConfigurationError("a node in linkage hub mode hosts exactly one agency")
    return config.agencies[0].code


def _made_once(keys: Keys, name: str) -> str:
    keys.store.create(name, pysecrets.token_hex(32))
    return keys.store.get(name)


def code_secret(keys: Keys, agency: str) -> KeyedHash:
    """The HMAC under ``agency``'s code secret, made the first time it is needed; computed where the secret lives
    (with ``pkcs11`` inside the token: the secret never enters this process)."""
    return keys.secret_hash(code_secret_name(agency), f"code secret of agency {agency}")


def sealing_key(keys: Keys) -> X25519PrivateKey:
    try:
        return sealing_key_from_hex(_made_once(keys, SEALING))
    except FlagLedgerError as exc:
        raise ConfigurationError(f"cannot read the linkage sealing key {keys.store.where(SEALING)}") from exc


class AgencyCodes(Pseudonymizer):
    """The hub-mode subject: this agency's own code for the number (spelled ``p…``), under its own secret.
    ``met`` is told (subject, number) the first time a number is typed, to keep its registration."""

    def __init__(self, secret: bytes | KeyedHash, agency: str) -> None:
        super().__init__(secret)
        self.agency = agency
        self.met: RegistrationKeeper | None = None

    def __call__(self, number: str) -> str:
        subject = subject_of(agency_code(self._mac, self.agency, number))
        if self.met is not None:
            self.met.keep(subject, number)
        return subject


class RegistrationKeeper:
    """Seals a person's registration to the hub when their number is first typed, and keeps it — with, when the
    hub publishes its VRF key, the keyed check of the proof the hub will answer with (``person_check``:
    :func:`ledger.linkage.person_keys.person_key_check`, under this agency's code secret), so the node checks that
    proof without keeping the number (``consumers/linkage_map.py``)."""

    def __init__(
        self, engine: Engine, keys: PartyKeys, hub_sealing: X25519PublicKey, vrf_key: RSAPublicKey | None = None
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.hub_sealing = hub_sealing
        self.vrf_key = vrf_key
        self._kept: set[str] = set()
        self._lock = threading.Lock()

    def keep(self, subject: str, number: str) -> None:
        with self._lock:
            if subject in self._kept:
                return
            with self.engine.connect() as conn:
                found = conn.execute(
                    select(linkage_registrations.c.subject).where(linkage_registrations.c.subject == subject)
                ).first()
            if found is None:
                payload = Registration(self.keys.name, code_of(subject), number).encode()
                sealed = seal(self.keys.signer, self.hub_sealing, HUB, uuid.uuid4().hex, "registration", payload)
                check = None
                if self.vrf_key is not None:
                    check = person_key_check(self.vrf_key, KeyedHash.of(self.keys.secret), self.keys.name, number)
                row = {"subject": subject, "sealed": sealed, "sent": 0, "person_check": check}
                # another process of this node may keep it first: the same registration, either is sent
                with suppress(SqlIntegrityError), self.engine.begin() as conn:
                    conn.execute(insert(linkage_registrations).values(**row))
            self._kept.add(subject)


def pseudonymizer(config: NodeConfig, keys: Keys) -> Pseudonymizer:
    """The node's subjects: the shared pseudonym (shared mode) or this agency's own codes (hub mode)."""
    if not hub_mode(config):
        return Pseudonymizer(keys.pseudonym_hash())
    agency = hosted_agency(config)
    _hub(config)  # refused before anything is opened: a hub-mode node that cannot reach the hub is misconfigured
    return AgencyCodes(code_secret(keys, agency), agency)


def _hub(config: NodeConfig) -> HubEntry:
    return HubEntry.of(config.linkage.get("hub"))


def party_keys(node: Node) -> PartyKeys:
    """This agency's keys in the linkage: its current signing key, its sealing key, its code secret."""
    agency = hosted_agency(node.config)
    return PartyKeys(node.app.signers[agency], sealing_key(node.keys), code_secret(node.keys, agency))


def linkage_directory(config: NodeConfig) -> Directory:
    """What this agency needs of the others: the hub's keys, and the portal's (records' contents are sealed to
    it) when configured."""
    directory = Directory()
    portal = config.linkage.get("portal")
    entries = [(HUB, _hub(config))] + ([] if portal is None else [(PORTAL, HubEntry.of(portal, PORTAL))])
    entries += witness_entries(config)
    for party, entry in entries:
        record = KeyRecord(party, entry.key_id, entry.public_hex, datetime.fromisoformat(entry.valid_from))
        directory.add(record, public_from_hex(entry.sealing_public_hex))
        if party == PORTAL and entry.delivery_hex:  # wire keys go sealed to it (ledger.linkage.wire_keys)
            directory.delivery[PORTAL] = delivery_of(entry.delivery_hex)
            directory.delivery_serial[PORTAL] = delivery_serial(entry.delivery_hex)
    return directory


def witness_entries(config: NodeConfig) -> list[tuple[str, HubEntry]]:
    """``linkage.witnesses``: the witnesses this agency shows its tree heads to (issue #20), each entry shaped
    as ``linkage.hub``'s with its ``party`` named; [] when none are configured."""
    raw = config.linkage.get("witnesses") or []
    if not isinstance(raw, list):
        raise ConfigurationError("linkage.witnesses must be a list of witnesses' directory entries")
    found = []
    for item in raw:
        party = str(item.get("party", "")) if isinstance(item, dict) else ""
        try:
            check_party(party, "party")
        except InputError as exc:
            raise ConfigurationError(f"each of linkage.witnesses must name its party: {exc}") from exc
        found.append((party, HubEntry.of(item, party)))
    return found


def published(node: Node) -> tuple[KeyRecord, X25519PublicKey]:
    """What this agency publishes for the hub: its current signing key and its sealing key's public half."""
    agency = hosted_agency(node.config)
    entry = node.config.agency(agency).current_key
    record = KeyRecord(agency, entry["key_id"], entry["public_hex"], datetime.fromisoformat(entry["valid_from"]))
    return record, sealing_key(node.keys).public_key()


def published_entry(node: Node) -> dict[str, str]:
    """This agency's directory entry, in the shape the hub's `flagledger linkage directory import` takes."""
    record, sealing = published(node)
    return {
        "party": record.agency,
        "key_id": record.key_id,
        "public_hex": record.public_hex,
        "valid_from": record.valid_from.isoformat(),
        "sealing_public_hex": public_hex(sealing),
        "kind": str(node.app.agency(record.agency).kind),  # its claim; the hub's administrator vouches at import
        # what this release understands: the hub sends hub_seq only to an entry naming it (docs/linkage.md,
        # "Upgrade order"); an older hub refuses the field at import — keep the entry it already has
        "features": ",".join(sorted(FEATURES)),
    }


def attach(node: Node) -> None:
    """In hub mode: keep each person's registration, sealed to the hub, when their number is first typed."""
    pseudo = node.app.pseudonymize
    if isinstance(pseudo, AgencyCodes):
        keys = party_keys(node)
        hub = _hub(node.config)
        vrf = vrf_public_from_hex(hub.vrf_public_hex) if hub.vrf_public_hex else None
        pseudo.met = RegistrationKeeper(node.engine, keys, public_from_hex(hub.sealing_public_hex), vrf)
        from ledger.runtime.handovers import HubHandovers

        node.app.hub_moves = HubHandovers(node.engine)  # the hub's word on handovers (ledger.app.handover)
        node.app.proxies_at_hub = True  # a peer's proxy registration is cancelled through the hub (ledger.app.identity)
        from ledger.runtime.body_requests import HubBodyRequests

        node.app.hub_bodies = HubBodyRequests(node.engine, hosted_agency(node.config))  # ledger.app.bodies
