"""The parties of ``flagledger demo --topology hub``: municipalities A, B, C and the pension office D as hub-mode
agency nodes, a hub and a portal, each in its own data directory under the demo's, all in one process on one
:class:`MemoryBroker`.

Each party's directory is made as an operator would make it (``init_node`` then ``linkage.mode: hub``;
``init_role hub|portal``), and the parties learn each other only from published entries: the hub imports the
agencies' and the portal's (``published_entry``, ``import_entries``), the portal and each agency the hub's. The
broker object is the one thing the parties share; what each one stores is what its own directory holds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from consumers.linkage_bridge import LinkageBridge
from ledger.cli.demo_tables import NAMES, X_NUMBER, A, B, C, D
from ledger.hub.heads import MapHeads
from ledger.hub.log import HubStore
from ledger.hub.portal_feed import PortalFeed
from ledger.hub.rosters import HubRosters
from ledger.hub.service import HubService
from ledger.linkage.codes import agency_code
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.person_keys import PersonKeyProver
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.log.pseudonym import check_digit
from ledger.portal.service import PortalService
from ledger.portal.store import PortalStore
from ledger.runtime.bootstrap import AgencySpec, Node, init_node, open_node
from ledger.runtime.config import NodeConfig
from ledger.runtime.linkage import code_secret, published_entry
from ledger.runtime.roles import RoleNode, import_entries, init_role

__all__ = ["DIRS", "Z_NUMBER", "HubWorld", "sqlite_rows", "x_code"]

Z_NUMBER = "24681357902" + str(check_digit("24681357902"))  # an unprotected resident of A: the control
DIRS = {A: "a", B: "b", C: "c", D: "d", HUB: "hub", PORTAL: "portal"}  # each party's data directory, under the demo's


def x_code(node: Node, agency: str, number: str = X_NUMBER) -> str:
    """``agency``'s own code for ``number`` (computed from its secret here, for the demo's checks only: typing the
    number at the node would register the person there)."""
    return agency_code(code_secret(node.keys, agency), agency, number)


def _agency_node(data_dir: Path, code: str, hub: RoleNode, portal: RoleNode) -> Node:
    """A fresh agency directory switched to hub mode before anyone is filed (subjects are its own codes)."""
    kind = "national" if code == D else "municipality"  # D: a pension office, no municipality
    made = init_node(data_dir, [AgencySpec(code, NAMES[code], kind, second_administrator="admin2")])
    first = dict(made.app.first_codes)  # the first administrator's one-time code, shown once (as by `init`)
    made.close()
    config = NodeConfig.load(data_dir)
    # the portal's entry too: the agency seals its records' contents to the portal (the hub cannot read them)
    config.linkage = {"mode": "hub", "hub": hub.own.as_json(), "portal": portal.own.as_json()}
    config.save()
    node = open_node(data_dir)
    node.app.first_codes.update(first)
    return node


@dataclass
class HubWorld:
    root: Path
    broker: MemoryBroker
    hub_role: RoleNode
    portal_role: RoleNode
    hub_store: HubStore
    portal_store: PortalStore
    hub: HubService
    feed: PortalFeed
    portal: PortalService
    nodes: dict[str, Node] = field(default_factory=dict)
    bridges: dict[str, LinkageBridge] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path) -> HubWorld:
        hub_role = init_role(root / DIRS[HUB], HUB)
        portal_role = init_role(root / DIRS[PORTAL], PORTAL)
        nodes = {code: _agency_node(root / DIRS[code], code, hub_role, portal_role) for code in (A, B, C, D)}
        # the out-of-band exchange of published keys (`linkage directory export|import`): public halves only
        import_entries(hub_role, [published_entry(n) for n in nodes.values()] + [portal_role.own.as_json()])
        # the portal checks the agencies' signatures on the records' sealed contents
        import_entries(portal_role, [hub_role.own.as_json()] + [published_entry(n) for n in nodes.values()])
        broker = MemoryBroker()
        hub_store = hub_role.hub_store("hub-demo")
        # as `flagledger node --role hub` runs it: the flag map its published VRF key announces (the agencies'
        # bridges check it) and the providers' rosters (their staff answers checked against them)
        assert hub_role.vrf is not None
        hub = HubService(
            hub_store,
            MemoryTransport(broker, HUB),
            hub_role.keys,
            hub_role.directory(),
            rosters=HubRosters(hub_store.engine),
            heads=MapHeads(hub_role.keys.signer, PersonKeyProver(hub_role.vrf)),
        )
        portal_store = portal_role.portal_store()
        portal = PortalService(
            portal_store,
            MemoryTransport(broker, PORTAL),
            portal_role.keys,
            portal_role.directory(),
            wires=portal_role.wire_keys(),
        )
        world = cls(
            root,
            broker,
            hub_role,
            portal_role,
            hub_store,
            portal_store,
            hub,
            PortalFeed(hub_store, hub_role.keys, hub.directory),
            portal,
            nodes,
        )
        for code, node in nodes.items():
            world.bridges[code] = LinkageBridge(node, MemoryTransport(broker, code))
        return world

    def settle(self, rounds: int = 20) -> None:
        """Turn every party's loop once per round — agencies push, the hub steps and feeds the portal, the
        portal and the agencies pull — until a round moves nothing (what `flagledger node` does for each)."""
        for _ in range(rounds):
            moved = False
            for bridge in self.bridges.values():
                pushed = bridge.push()
                moved |= bool(pushed.acts or pushed.registrations)
            moved |= bool(self.portal.step(timeout_ms=5).sent)
            step = self.hub.step(timeout_ms=5)
            moved |= bool(step.applied or step.parked or step.replays or step.sent)
            fed = self.feed.step()
            moved |= bool(fed) or bool(self.hub.step(timeout_ms=5).sent)
            kept = self.portal.step(timeout_ms=5)
            moved |= bool(kept.kept or kept.refused)
            for bridge in self.bridges.values():
                pulled = bridge.pull(timeout_ms=5)
                moved |= bool(pulled.applied or pulled.parked)
            if not moved:
                return

    def party_dir(self, party: str) -> Path:
        return self.root / DIRS[party]

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        self.hub_store.close()
        self.portal_store.close()
        if self.portal.wires is not None:
            self.portal.wires.close()


def sqlite_rows(data_dir: Path) -> list[str]:
    """Every row of every table of every SQLite database in ``data_dir``, as text: what that party stores."""
    rows: list[str] = []
    for path in sorted(data_dir.rglob("*.sqlite")):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                rows += [str(row) for row in conn.execute(f'SELECT * FROM "{table}"')]
        finally:
            conn.close()
    return rows
