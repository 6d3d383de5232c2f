"""The hub, agencies and the portal in one process on one transport: the portal role's slice of issue 19.

Built on ``tests.support.hub_world``: the portal gets its own keys (signing, sealing, code secret), its entry
is added to the one ``Directory`` the parties share, its database is its own (``PortalStore``), and the hub
feeds it through ``PortalFeed`` after each step, as the hub role's loop does (ledger/node/roles.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.hub.log import HubStore
from ledger.hub.portal_feed import PortalFeed
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import PORTAL
from ledger.linkage.transport import Transport
from ledger.log.signing import KeyRecord, Signer
from ledger.portal.rules import PortalView
from ledger.portal.service import PortalService, read_page
from ledger.portal.store import PortalStore, open_portal_store
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

    @classmethod
    def open(
        cls,
        cast: Cast,
        hub: HubStore,
        portal_db: Path,
        open_transport: Callable[[str], Transport],
        portal_url: str | None = None,
    ) -> PortalWorld:
        """``portal_url``: the portal's database elsewhere (PostgreSQL); by default SQLite at ``portal_db``."""
        world = World.open(cast, hub, open_transport)
        keys = portal_keys()
        directory = world.hub.directory  # shared by the hub and the agencies' ends: one published set of keys
        directory.add(entry(keys), keys.sealing.public_key())
        store = open_portal_store(portal_url or f"sqlite:///{portal_db}")
        portal = PortalService(store, open_transport(PORTAL), keys, directory, lambda: START)
        return cls(world, keys, store, portal, PortalFeed(hub, cast.hub, directory))

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
