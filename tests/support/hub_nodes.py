"""Agency nodes in linkage hub mode around one in-process hub (issue 19): each node its own data directory,
keys and databases, switched to hub mode, with a :class:`LinkageBridge` on a shared in-memory broker; the hub a
:class:`HubService` on its own database. Nothing is shared between the parties but the broker object and the
published keys (the hub's directory holds each agency's signing and sealing public keys, each agency the hub's).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from consumers.linkage_bridge import LinkageBridge
from ledger.app import Actor
from ledger.clock import now
from ledger.domain.types import AgencyKind
from ledger.hub.heads import MapHeads
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.portal_feed import PortalFeed
from ledger.hub.rosters import HubRosters
from ledger.hub.service import HubService
from ledger.linkage.directory import FEATURES, Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import PORTAL
from ledger.linkage.person_keys import PersonKeyProver, vrf_public_hex
from ledger.linkage.sealing import public_hex
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Transport
from ledger.linkage.wire_keys import delivery_entry
from ledger.log.datakeys import AesKek
from ledger.log.signing import KeyRecord
from ledger.portal.rotation import DeliveryRotation, utc_text
from ledger.portal.service import PortalService
from ledger.portal.store import PortalStore, open_portal_store
from ledger.portal.wire_keys import PortalWireKeys
from ledger.runtime.bootstrap import AgencySpec, Node, open_node
from ledger.runtime.config import NodeConfig
from ledger.runtime.linkage import published
from tests.support.approvals import approve_fully
from tests.support.hub_world import agency_keys, hub_keys
from tests.support.map_hub import vrf_key
from tests.support.postgres import temp_database

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"


def hub_entry(keys: PartyKeys, valid_from: str, vrf: RSAPrivateKey | None = None) -> dict[str, str]:
    """The hub's (or the portal's) published keys, as an agency's config.json ``linkage.hub`` names them (with
    ``vrf``: a hub running its flag map)."""
    signer = keys.signer
    entry = {
        "party": keys.name,
        "key_id": signer.key_id,
        "public_hex": signer.public_raw.hex(),
        "sealing_public_hex": public_hex(keys.sealing.public_key()),
        "valid_from": valid_from,
    }
    return entry if vrf is None else {**entry, "vrf_public_hex": vrf_public_hex(vrf.public_key())}


def to_hub_mode(
    node: Node,
    hub: PartyKeys,
    vrf: RSAPrivateKey | None = None,
    portal: PartyKeys | None = None,
    delivery: str = "",
) -> Node:
    """Close ``node`` and open it again in linkage hub mode (its agency's own codes from now on); ``portal``:
    the portal's keys it seals its records' contents to; ``delivery``: its entry's delivery key, as exported."""
    data_dir = node.config.data_dir
    valid_from = (node.app.clock() - timedelta(days=1)).isoformat()
    node.close()
    config = NodeConfig.load(data_dir)
    config.linkage = {"mode": "hub", "hub": hub_entry(hub, valid_from, vrf)}
    if portal is not None:
        config.linkage["portal"] = hub_entry(portal, valid_from)
        if delivery:
            config.linkage["portal"]["delivery_hex"] = delivery
    config.save()
    return open_node(data_dir)


@dataclass
class HubNodes:
    hub_keys: PartyKeys
    broker: MemoryBroker
    hub: HubService
    nodes: dict[str, Node] = field(default_factory=dict)
    bridges: dict[str, LinkageBridge] = field(default_factory=dict)
    open_transport: Callable[[str], Transport] | None = None  # default: the in-memory broker
    portal_keys: PartyKeys | None = None  # the portal the nodes seal their records' contents to

    def settle(self, rounds: int = 20) -> None:
        """Push every node, step the hub, pull every node — until nothing moves."""
        for _ in range(rounds):
            moved = False
            for bridge in self.bridges.values():
                pushed = bridge.push()
                moved |= bool(pushed.acts or pushed.registrations)
            step = self.hub.step(timeout_ms=20)
            moved |= bool(step.applied or step.parked or step.replays or step.sent)
            for bridge in self.bridges.values():
                pulled = bridge.pull(timeout_ms=20)
                moved |= bool(pulled.applied or pulled.parked)
            if not moved:
                return

    def bridge(self, code: str) -> LinkageBridge:
        """A new bridge of ``code``'s node (no memory of the last one: what it knows is in its database)."""
        opened = self.open_transport(code) if self.open_transport else MemoryTransport(self.broker, code)
        self.bridges[code] = LinkageBridge(self.nodes[code], opened)
        return self.bridges[code]

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()


@contextmanager
def hub_world(
    make_node: Callable[..., Node],
    backend: str | None,
    tmp_path: Path,
    codes: tuple[str, ...],
    heads: type[MapHeads] | None = None,
    delivery: str = "",
    open_transport: Callable[[str], Transport] | None = None,
    older: tuple[str, ...] = (),
) -> Iterator[HubNodes]:
    """:func:`hub_nodes` for ``codes`` with a hub ``hub-1``, on SQLite files in ``tmp_path`` (``backend`` None) or
    each party on its own fresh PostgreSQL database; closed (and the databases dropped) on exit.
    ``open_transport``: each party's transport (default: the in-memory broker); ``older``: agencies whose entries
    the hub imported from an older release (naming no features)."""
    with ExitStack() as stack:
        if backend is None:
            urls: dict[str, str | None] = {}
            hub_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
        else:
            urls = {c: stack.enter_context(temp_database()) for c in codes}
            hub_url = stack.enter_context(temp_database())
        store = open_hub_store(hub_url, "hub-1")
        stack.callback(store.close)
        w = hub_nodes(make_node, store, codes, urls, open_transport, heads=heads, delivery=delivery, older=older)
        stack.callback(w.close)
        yield w


@dataclass
class PortalNodes:
    """:func:`hub_world`'s nodes and hub, and the portal's own database and wire-key file, fed by the hub."""

    world: HubNodes
    store: PortalStore
    wires: PortalWireKeys
    feed: PortalFeed

    def service(self, rotation: DeliveryRotation | None = None) -> PortalService:
        """The portal on the shared broker, on the first node's clock; ``rotation``: its delivery keys' schedule
        (none: it rotates nothing)."""
        keys = self.world.portal_keys
        assert keys is not None
        clock = next(iter(self.world.nodes.values())).app.clock
        opened = self.world.open_transport
        transport = opened(PORTAL) if opened else MemoryTransport(self.world.broker, PORTAL)
        return PortalService(
            self.store, transport, keys, self.world.hub.directory, clock, wires=self.wires, rotation=rotation
        )


@contextmanager
def portal_nodes(
    make_node: Callable[..., Node],
    backend: str | None,
    tmp_path: Path,
    codes: tuple[str, ...],
    exported: bool = False,
    open_transport: Callable[[str], Transport] | None = None,
) -> Iterator[PortalNodes]:
    """:func:`hub_world` with the portal's database beside the hub's (SQLite in ``tmp_path``, or a fresh
    PostgreSQL database of its own) and its wire-key file; all closed (and the databases dropped) on exit.
    ``exported``: the portal made its first delivery key before the agencies joined, and their ``linkage.portal``
    entries name it with its serial, as ``linkage directory export`` does (else they name no delivery key);
    ``open_transport``: every party's transport, the portal's too (default: the in-memory broker)."""
    with ExitStack() as stack:
        wires = PortalWireKeys(tmp_path / "portal-wirekeys.sqlite", AesKek(os.urandom(32)))
        stack.callback(wires.close)
        delivery = ""
        if exported:
            key_id, public = wires.rotate(utc_text(now()))
            delivery = delivery_entry(key_id, public, 1)
        w = stack.enter_context(
            hub_world(make_node, backend, tmp_path, codes, delivery=delivery, open_transport=open_transport)
        )
        if backend is None:
            portal_url = f"sqlite:///{tmp_path / 'portal.sqlite'}"
        else:
            portal_url = stack.enter_context(temp_database())
        store = open_portal_store(portal_url)
        stack.callback(store.close)
        yield PortalNodes(w, store, wires, PortalFeed(w.hub.store, w.hub_keys, w.hub.directory))


def hub_nodes(
    make_node: Callable[..., Node],
    store: HubStore,
    codes: tuple[str, ...],
    urls: dict[str, str | None] | None = None,
    open_transport: Callable[[str], Transport] | None = None,
    heads: type[MapHeads] | None = None,
    kinds: dict[str, str] | None = None,
    delivery: str = "",
    older: tuple[str, ...] = (),
) -> HubNodes:
    """One node per agency code (standard staff; ``urls``: each one's own database, default SQLite; ``kinds``: an
    agency's kind when not a municipality, e.g. a protection body), switched
    to hub mode, and the hub that knows them; with ``heads``, the hub runs that flag map and publishes its VRF
    key, and the nodes check the map."""
    keys, portal = hub_keys(), agency_keys(PORTAL)
    vrf = vrf_key() if heads is not None else None
    broker = MemoryBroker()
    urls = urls or {}
    nodes = {
        c: to_hub_mode(
            make_node(
                (AgencySpec(c, f"{c}市", (kinds or {}).get(c, "municipality")),), name=c, database_url=urls.get(c)
            ),
            keys,
            vrf,
            portal,
            delivery,
        )
        for c in codes
    }
    directory = Directory()
    directory.add(
        KeyRecord(
            keys.name,
            keys.signer.key_id,
            keys.signer.public_raw.hex(),
            next(iter(nodes.values())).app.clock() - timedelta(days=1),
        ),
        keys.sealing.public_key(),
    )
    for node in nodes.values():
        record, sealing = published(node)
        # each agency's kind as the hub's administrator accepts it at import (docs/linkage.md)
        # and the features its entry names (none for an entry exported by an ``older`` release)
        features = () if record.agency in older else FEATURES
        directory.add(record, sealing, AgencyKind(node.app.agency(record.agency).kind), features)
    since = next(iter(nodes.values())).app.clock() - timedelta(days=1)
    directory.add(
        KeyRecord(PORTAL, portal.signer.key_id, portal.signer.public_raw.hex(), since), portal.sealing.public_key()
    )
    any_node = next(iter(nodes.values()))
    hub_transport = open_transport("hub") if open_transport else MemoryTransport(broker, "hub")
    # the providers' rosters as their nodes send them: the hub checks their staff answers against them
    wiring = None if heads is None or vrf is None else heads(keys.signer, PersonKeyProver(vrf))
    hub = HubService(
        store, hub_transport, keys, directory, any_node.app.clock, rosters=HubRosters(store.engine), heads=wiring
    )
    world = HubNodes(keys, broker, hub, nodes, open_transport=open_transport, portal_keys=portal)
    for code in codes:
        world.bridge(code)
    return world


def set_flag(node: Node, agency: str, number: str, flag: str) -> None:
    """Four eyes at ``agency``: requested, approved, executed (the agency's own chain)."""
    rid = node.app.request_flags(Actor(agency, "req"), number, [flag])
    approve_fully(node.app, agency, rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def release_flag(node: Node, agency: str, number: str, flag: str) -> None:
    """Four eyes at ``agency`` release its ``flag`` on ``number``."""
    rid = node.app.request_flags(
        Actor(agency, "req"), number, [flag], kind="release", explanation="the protection order ended"
    )
    approve_fully(node.app, agency, rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def data_dir_bytes(path: Path) -> bytes:
    """Every file under a node's data directory, secrets and databases, as one blob to search."""
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
