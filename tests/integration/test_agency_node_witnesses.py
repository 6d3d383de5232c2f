"""An agency node in hub mode and a witness (issue #20, consumers.linkage_witness): the node's own signed
checkpoints reach the witness through the hub (forwarded) and its relay, are cosigned, and a witness's
``witness_incident`` about the node's log is recorded at the node as a security Incident. The real node, bridge,
hub loop and witness loop on one memory transport; every database on SQLite or PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.linkage_witness import cosignatures
from ledger.app.checkpoints import latest_checkpoint, sign_checkpoint
from ledger.app.incidents import incidents_of
from ledger.errors import Code, IntegrityError
from ledger.hub.heads import MapHeads
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_cosignatures
from ledger.linkage.keys import PartyKeys
from ledger.linkage.transport import MemoryTransport
from ledger.linkage.tree_heads import Cosignature, TreeHead, TreeHeadMessage, decode_tree_head, encode_tree_head
from ledger.log.signing import KeyRecord
from ledger.runtime.linkage import published
from ledger.runtime.tables import linkage_cosignatures, linkage_parked
from ledger.witness.service import WitnessService
from ledger.witness.store import WitnessStore, open_witness_store
from tests.conftest import NodeFactory
from tests.support.hub_nodes import HubNodes, hub_entry, hub_nodes, set_flag
from tests.support.hub_world import A, agency_keys
from tests.support.people import individual_number
from tests.support.postgres import temp_database
from tests.support.staff import run_in_process

W1 = "W-KANTO"


class Witnessed:
    def __init__(self, world: HubNodes, witness: WitnessService, store: WitnessStore, keys: PartyKeys) -> None:
        self.world, self.witness, self.store, self.keys = world, witness, store, keys

    def settle(self, rounds: int = 12) -> None:
        """Push the node, step the hub and the witness, pull the node — until nothing moves."""
        bridge = self.world.bridges[A]
        for _ in range(rounds):
            pushed = bridge.push()
            step = self.world.hub.step(timeout_ms=10)
            done = self.witness.step(timeout_ms=10)
            pulled = bridge.pull(timeout_ms=10)
            moved = pushed.acts or step.applied or step.parked or step.sent or done.applied or done.sent
            if not (moved or pulled.applied or pulled.parked):
                return


@pytest.fixture
def witnessed(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[Witnessed]:
    with open_witnessed(make_node, backend, tmp_path) as world:
        yield world


@pytest.fixture
def witnessed_map(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[Witnessed]:
    """The same, with the hub running its flag map and the node checking it (its witness W1 from config)."""
    with open_witnessed(make_node, backend, tmp_path, MapHeads) as world:
        yield world


@contextmanager
def open_witnessed(
    make_node: NodeFactory, backend: str | None, tmp_path: Path, heads: type[MapHeads] | None = None
) -> Iterator[Witnessed]:
    with ExitStack() as stack:
        url = (lambda n: f"sqlite:///{tmp_path / (n + '.sqlite')}") if backend is None else (
            lambda n: stack.enter_context(temp_database())
        )  # fmt: skip
        hub_store = open_hub_store(url("hub"), "hub-1")
        stack.callback(hub_store.close)
        world = hub_nodes(make_node, hub_store, (A,), {A: None if backend is None else url(A)}, heads=heads)
        stack.callback(world.close)
        node = world.nodes[A]
        keys = agency_keys(W1)
        since = node.app.clock() - timedelta(days=1)
        record = KeyRecord(W1, keys.signer.key_id, keys.signer.public_raw.hex(), since)
        world.hub.directory.add(record, keys.sealing.public_key())  # the hub forwards heads to the witness
        world.hub.witnesses = (W1,)
        node.config.linkage["witnesses"] = [hub_entry(keys, since.isoformat())]
        world.bridge(A)  # the node's bridge with the witness configured
        directory = world.hub.directory  # the witness knows the hub and the agency by their published keys
        directory.add(*published(node))
        store = open_witness_store(url(W1))
        stack.callback(store.close)
        witness = WitnessService(
            store, MemoryTransport(world.broker, W1), keys, directory, world.hub_keys.signer.public_key,
            now=node.app.clock,
        )  # fmt: skip
        yield Witnessed(world, witness, store, keys)


def test_the_nodes_checkpoints_reach_the_witness_and_are_cosigned(witnessed: Witnessed) -> None:
    """Threat: insider rewriting its own agency's log — only a log whose heads a witness holds can be caught
    rewritten. The node signs and publishes its checkpoint on its own; the witness holds it and cosigns it; the
    next one is published with a consistency proof from the last (the witness finds nothing), and a restarted
    bridge publishes nothing twice (the size is kept in the node's database)."""
    node, bridge = witnessed.world.nodes[A], witnessed.world.bridges[A]
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    witnessed.settle()
    first = witnessed.witness.book.latest[A].size
    assert first > 0 and bridge.witness.cosigned() == {W1: first}

    set_flag(node, A, individual_number(), "NO_AUTO_RESPONSE")
    sign_checkpoint(node.app)
    witnessed.settle()
    second = witnessed.witness.book.latest[A].size
    assert second > first and bridge.witness.cosigned() == {W1: second}
    assert not witnessed.store.findings() and not incidents_of(node.app, A)

    again = witnessed.world.bridge(A)
    assert again.witness.publish() == 0


def test_a_forged_head_for_the_same_size_is_raised_at_the_node(witnessed: Witnessed) -> None:
    """Threat: insider rewriting its own agency's log (or a hub insider holding the node's key) — a second head
    for a size already published, signed with the node's own key over another root, is shown to the witness:
    it raises ``checkpoint_fork``, and the node records it as an Incident of its agency with the evidence
    parked. A replay of the same incident raises no second one."""
    node, bridge = witnessed.world.nodes[A], witnessed.world.bridges[A]
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    witnessed.settle()
    held = witnessed.witness.book.latest[A]
    signer = node.app.signers[A]
    forged = TreeHead.sign(signer, held.size, bytes(32), node.app.clock().isoformat())
    bridge.end.relay(W1, TreeHeadMessage(encode_tree_head(forged).hex(), 0, ""))
    witnessed.settle()

    (found,) = witnessed.store.findings()
    assert (found.code, found.accused) == (Code.CHECKPOINT_FORK, A)
    (incident,) = incidents_of(node.app, A)
    assert incident.code == Code.CHECKPOINT_FORK and bridge.witness.raised == 1
    with node.engine.connect() as conn:
        parked = conn.execute(select(linkage_parked.c.message).where(linkage_parked.c.code == Code.CHECKPOINT_FORK))
        assert list(parked.scalars()) == [found.evidence()]

    bridge.end.relay(W1, TreeHeadMessage(encode_tree_head(forged).hex(), 0, ""))
    witnessed.settle()
    assert len(incidents_of(node.app, A)) == 1


def test_a_hub_that_never_shows_a_flag_change_is_raised_at_the_node(witnessed_map: Witnessed) -> None:
    """Threat: the hub insider — the hub files nothing and says nothing about the node's flag change (its loop
    never runs). The node names W1, so it needs W1's cosignature; past its deadline (``linkage.map``'s
    ``witness_deadline_seconds``) its next pull raises ``change_unseen`` as an Incident of its agency — a hub
    that sends nothing at all is held to the deadline too. Against an honest hub and witness the change is
    acknowledged, shown under a head W1 cosigned, and nothing is raised however long after."""
    node, bridge = witnessed_map.world.nodes[A], witnessed_map.world.bridges[A]
    checks = bridge.checks
    assert checks is not None and checks.witnesses == (W1,) and checks.needed == 1
    real = checks.now
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    bridge.push()  # to the hub, which never steps
    checks.now = lambda: real() + checks.deadline + timedelta(seconds=1)
    bridge.pull(timeout_ms=10)
    codes = [i.code for i in incidents_of(node.app, A)]
    assert codes.count(Code.CHANGE_UNSEEN) == 1
    bridge.pull(timeout_ms=10)
    assert [i.code for i in incidents_of(node.app, A)].count(Code.CHANGE_UNSEEN) == 1  # raised once


def test_an_honest_hub_shows_the_change_under_a_cosigned_head(witnessed_map: Witnessed) -> None:
    """Threat: the hub insider (the control) — the hub acknowledges the node's change, W1 cosigns the head that
    shows it, the hub passes the cosignature on with the next head and keeps it; no deadline passes unmet."""
    node, bridge = witnessed_map.world.nodes[A], witnessed_map.world.bridges[A]
    checks = bridge.checks
    assert checks is not None
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    witnessed_map.settle()
    set_flag(node, A, individual_number(), "NO_AUTO_RESPONSE")  # the next head carries the first's cosignature
    witnessed_map.settle()
    assert checks.cosigned and len(checks.unseen) <= 1  # the first change seen under a cosigned head
    with witnessed_map.world.hub.store.engine.connect() as conn:
        assert {r.witness for r in conn.execute(select(hub_cosignatures))} == {W1}
    assert not [i for i in incidents_of(node.app, A) if i.code in (Code.CHANGE_UNSEEN, Code.HEAD_UNCOSIGNED)]


def test_a_head_no_witness_cosigns_is_raised_at_the_node_past_the_deadline(witnessed: Witnessed) -> None:
    """Threat: the hub insider dropping the relays to the witnesses (or witnesses gone): the node's published
    head is cosigned by no one. Within the deadline nothing is raised; past it, the next push raises
    ``head_uncosigned`` as an Incident of the agency, once for that head. A cosigned head raises nothing."""
    node, bridge = witnessed.world.nodes[A], witnessed.world.bridges[A]
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    assert bridge.witness.publish() > 0  # published; the hub and the witness never step
    real = node.app.clock
    try:
        node.app.clock = lambda: real() + timedelta(seconds=bridge.witness.deadline - 5)
        bridge.push()
        assert not incidents_of(node.app, A)
        node.app.clock = lambda: real() + timedelta(seconds=bridge.witness.deadline + 5)
        bridge.push()
        bridge.push()
    finally:
        node.app.clock = real
    assert [i.code for i in incidents_of(node.app, A)] == [Code.HEAD_UNCOSIGNED]

    witnessed.settle()  # the hub forwards, W1 cosigns: the next head is cosigned in time, nothing more raised
    assert bridge.witness.cosigned()[W1] > 0 and len(incidents_of(node.app, A)) == 1


def test_the_witnesses_cosignatures_are_kept_across_a_restart_and_listed(
    witnessed: Witnessed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: insider at the agency rewriting its log, and a hub insider who would deny the node was witnessed —
    each cosignature of the node's checkpoints is kept as bytes an auditor checks again with W1's public key
    alone; a restarted node (a new bridge on the same database) still lists them, and a redelivered cosignature
    is kept once."""
    node = witnessed.world.nodes[A]
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    witnessed.settle()
    set_flag(node, A, individual_number(), "NO_AUTO_RESPONSE")
    sign_checkpoint(node.app)
    witnessed.settle()
    kept = cosignatures(node.engine)
    sizes = [c["size"] for c in kept]
    assert len(kept) >= 2 and sizes == sorted(set(sizes)) and {c["witness"] for c in kept} == {W1}
    public = witnessed.keys.signer.public_key
    for c in kept:  # each checks again with W1's key alone, and is a head of this agency's own log
        cosig = Cosignature(str(c["head"]), str(c["key_id"]), str(c["signature"]))
        head = decode_tree_head(cosig.verify(lambda party, key_id: public, W1))
        assert (head.origin, head.size, head.root.hex()) == (A, c["size"], c["root"])

    again = witnessed.world.bridge(A)  # restarted
    assert cosignatures(node.engine) == kept and again.witness.cosigned() == {W1: max(sizes)}
    newest = kept[-1]
    again.witness.take(Cosignature(str(newest["head"]), str(newest["key_id"]), str(newest["signature"])))
    assert cosignatures(node.engine) == kept  # a redelivery kept once
    rc, out, _ = run_in_process(["--data-dir", str(node.config.data_dir), "linkage", "cosignatures"], capsys)
    assert rc == 0 and json.loads(out) == {"cosignatures": kept}  # what an auditor is shown


def test_a_forged_cosignature_is_not_kept(witnessed: Witnessed) -> None:
    """Threat: a hub insider passing on a cosignature W1 never made (signed with another key under W1's key id,
    or with a key of its own): it is refused against W1's key from the node's directory, kept nowhere and
    counted nowhere; W1's own cosignature of the same head is kept."""
    node, bridge = witnessed.world.nodes[A], witnessed.world.bridges[A]
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    assert bridge.witness.publish() > 0  # published; the witness has not cosigned yet
    cp = latest_checkpoint(node.app, A)
    head = encode_tree_head(TreeHead(cp.origin, cp.tree_size, cp.root, cp.time, cp.key_id, cp.signature))
    forger = agency_keys(W1).signer  # a fresh key pair, not W1's published one
    forged = Cosignature.of(forger, head)
    for message in (forged, Cosignature(forged.subject, witnessed.keys.signer.key_id, forged.signature)):
        with pytest.raises(IntegrityError):
            bridge.witness.take(message)
    assert cosignatures(node.engine) == [] and bridge.witness.cosigned() == {W1: 0}

    bridge.witness.take(Cosignature.of(witnessed.keys.signer, head))
    with node.engine.connect() as conn:
        assert [r.witness for r in conn.execute(select(linkage_cosignatures))] == [W1]


def test_a_node_restarted_before_the_deadline_still_raises_change_unseen(witnessed_map: Witnessed) -> None:
    """Threat: the hub insider waiting for a restart — the hub acknowledges the node's flag change but no head
    that shows it is ever cosigned (the witness never hears of it). The node restarts between sending the change
    and the deadline: the deadline was kept in its database, so past it the restarted node raises
    ``change_unseen`` as an Incident of its agency, once."""
    node = witnessed_map.world.nodes[A]
    bridge = witnessed_map.world.bridges[A]
    set_flag(node, A, individual_number(), "NON_DISCLOSURE")
    for _ in range(4):  # the hub files and acknowledges; the witness never steps, so nothing is cosigned
        bridge.push()
        witnessed_map.world.hub.step(timeout_ms=10)
        bridge.pull(timeout_ms=10)
    checks = bridge.checks
    assert checks is not None and checks.held and not checks.unfiled and len(checks.unseen) == 1
    due = next(iter(checks.unseen.values()))[1]

    again = witnessed_map.world.bridge(A)  # restarted before the deadline
    restarted = again.checks
    assert restarted is not None and restarted.unseen == checks.unseen
    real = restarted.now
    restarted.now = lambda: max(real(), due) + timedelta(seconds=1)
    again.pull(timeout_ms=10)
    again.pull(timeout_ms=10)
    assert [i.code for i in incidents_of(node.app, A)].count(Code.CHANGE_UNSEEN) == 1
    assert not witnessed_map.world.bridge(A).checks.unseen  # raised: no deadline left to raise again
