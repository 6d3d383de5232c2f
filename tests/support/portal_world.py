"""The hub, agencies and the portal in one process on one transport: the portal role's slice of issue 19.

Built on ``tests.support.hub_world``: the portal gets its own keys (signing, sealing, code secret), its entry
is added to the one ``Directory`` the parties share, its database is its own (``PortalStore``), and the hub
feeds it through ``PortalFeed`` after each step, as the hub role's loop does (ledger/node/roles.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.hub.log import HubStore
from ledger.hub.portal_feed import PortalFeed
from ledger.linkage.erasure_messages import ErasureMessage
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import PORTAL
from ledger.linkage.transport import Transport
from ledger.log.datakeys import AesKek, DataKeys
from ledger.log.signing import KeyRecord, Signer
from ledger.portal.rules import PortalView
from ledger.portal.service import PortalService, read_page
from ledger.portal.store import PortalStore, open_portal_store
from ledger.portal.wire_keys import PortalWireKeys
from tests.support.hub_world import START, Cast, World


def portal_keys() -> PartyKeys:
    return PartyKeys(Signer.generate(PORTAL), X25519PrivateKey.generate(), os.urandom(32))


def entry(keys: PartyKeys) -> KeyRecord:
    return KeyRecord(keys.name, keys.signer.key_id, keys.signer.public_raw.hex(), START)


@dataclass
class PortalWorld:
    world: World
    keys: PartyKeys
    store: PortalStore
    portal: PortalService
    feed: PortalFeed
    wires: PortalWireKeys | None = None  # the portal's key file of the providers' wire keys
    agency_keys: dict[str, DataKeys] = field(default_factory=dict)  # each agency's wire keys (datakeys.sqlite)

    @classmethod
    def open(
        cls,
        cast: Cast,
        hub: HubStore,
        portal_db: Path,
        open_transport: Callable[[str], Transport],
        portal_url: str | None = None,
        wired: bool = True,
    ) -> PortalWorld:
        """``portal_url``: the portal's database elsewhere (PostgreSQL); by default SQLite at ``portal_db``.
        ``wired``: the providers send records' contents under per-person wire keys (ledger.linkage.wire_keys):
        each agency keeps them in its own key file, the portal in its own, its delivery key published."""
        world = World.open(cast, hub, open_transport)
        keys = portal_keys()
        directory = world.hub.directory  # shared by the hub and the agencies' ends: one published set of keys
        directory.add(entry(keys), keys.sealing.public_key())
        store = open_portal_store(portal_url or f"sqlite:///{portal_db}")
        wires, agency_keys = None, {}
        if wired:
            wires = PortalWireKeys(portal_db.with_name(portal_db.stem + "-wirekeys.sqlite"), AesKek(os.urandom(32)))
            directory.delivery[PORTAL] = wires.rotate()
            for name, end in world.agencies.items():
                agency_keys[name] = DataKeys(portal_db.with_name(f"datakeys-{name}.sqlite"), AesKek(os.urandom(32)))
                end.wires = agency_keys[name]
        portal = PortalService(store, open_transport(PORTAL), keys, directory, lambda: START, wires=wires)
        return cls(world, keys, store, portal, PortalFeed(hub, cast.hub, directory), wires, agency_keys)

    def erase(self, agency: str, number: str) -> str:
        """``agency`` erases the person (as a node's ``erase approve`` and bridge do): its data and wire keys
        destroyed, the hub told (``erasure``), the portal told which wire keys (``wire_erasure``, relayed)."""
        erasure_id = uuid.uuid4().hex
        end = self.world.agencies[agency]
        code = end.code(number)
        dk = self.agency_keys.get(agency)
        end.send(ErasureMessage(erasure_id, code))
        if dk is not None and (refs := dk.refs_of(code)):
            dk.destroy(refs, START.isoformat(), erasure_id, "admin2")
            end.send(end.wire_erasure(erasure_id, dk.wire_refs(refs, PORTAL)))
        self.settle()
        return erasure_id

    def rotate(self) -> None:
        """The portal's delivery key period ends: a new key published, the old private halves destroyed (the
        key messages sealed to them were taken, and the topics' retention window passed)."""
        assert self.wires is not None
        self.settle()
        self.world.hub.directory.delivery[PORTAL] = self.wires.rotate()
        self.wires.retire(keep=1)

    def close(self) -> None:
        self.store.close()
        if self.wires is not None:
            self.wires.close()
        for dk in self.agency_keys.values():
            dk.close()

    def settle(self, rounds: int = 10) -> None:
        """Turn the portal's and the hub's loops (and the feed) until nothing moves."""
        for _ in range(rounds):
            moved = self.portal.step(timeout_ms=20)
            self.world.settle(timeout_ms=20)
            fed = self.feed.step()
            self.world.settle(timeout_ms=20)  # sends what the feed owes
            kept = self.portal.step(timeout_ms=20)
            if not (moved.sent or fed or kept.kept or kept.sent):
                return

    def page(self, number: str, viewer: str = "self", proxy_number: str | None = None) -> PortalView:
        return read_page(self.store, self.keys, self.world.hub.directory, number, viewer, proxy_number)
