"""Leak-freedom across three agency nodes joined by ``consumers.ingest``, the network in the model's hands, one
municipality's node at a time turned malicious peer.

CI runs a handful of histories; the long job (``-m long``) runs ``FLAGLEDGER_NODE_HISTORIES`` of them
(10,000 by default). See tests/adversarial/README.md for the claim, the scope and the last long run.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.ingest import PendingStore
from ledger.audit.verify import verify_log
from ledger.runtime.bootstrap import Node, init_node
from tests.adversarial.test_leak_freedom import ROTATE_EVERY, run_histories
from tests.adversarial.threat import AGENCIES, MUNICIPALITIES, prepare_node
from tests.adversarial.threat_nodes import LAYOUT, NODE_OF, NodesLeakMachine, fresh_network
from tests.adversarial.threat_year import year_line
from tests.support.forge import forgeries
from tests.support.trust import trust_everyone

CI_HISTORIES = int(os.environ.get("FLAGLEDGER_CI_NODE_HISTORIES", "4"))
LONG_HISTORIES = int(os.environ.get("FLAGLEDGER_NODE_HISTORIES", "10000"))


def fresh_nodes(root: Path) -> list[Node]:
    """Nodes {A, D}, {B, E}, {C}: one pseudonym secret, every key vouched for, shared by a run's histories."""
    root.mkdir(parents=True, exist_ok=True)
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    specs = {a.code: a for a in AGENCIES}
    nodes = [
        init_node(root / f"node{i}", [specs[c] for c in codes], pseudonym_key_file=key)
        for i, codes in enumerate(LAYOUT)
    ]
    for node in nodes:
        prepare_node(node)
    trust_everyone(nodes)
    NodesLeakMachine.nodes = nodes
    NodesLeakMachine.net = fresh_network(nodes)
    return nodes


def close_nodes() -> None:
    for node in NodesLeakMachine.nodes or []:
        node.close()
    NodesLeakMachine.nodes = NodesLeakMachine.net = None
    NodesLeakMachine.indexes.clear()


def audit_nodes() -> None:
    """Every node's whole log verifies: in particular no event of a writer other than its stream's owner got in."""
    for i, node in enumerate(NodesLeakMachine.nodes or []):
        report = verify_log(node.app, workers=1)
        assert report.ok, f"node {i}: {report.first_bad}"


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    yield fresh_nodes(tmp_path_factory.mktemp("leak-nodes"))
    close_nodes()  # the latest three (the long run rotates them)


def network_line() -> str:
    m = NodesLeakMachine
    return (
        f"deliveries={m.deliveries} held_back={m.held_back} duplicates={m.duplicates} "
        f"malicious: forged={m.forged} parked_on_arrival={m.forged_parked} held_then_parked="
        f"{m.forged_released}/{m.forged_held} applied={m.forged_applied} unexpected={m.forged_unexpected} "
        f"event_types={len(m.forged_topics)} {year_line()}"
    )


def test_generated_histories_across_three_nodes_leak_nothing(three_nodes: list[Node]) -> None:
    """CI: a handful of histories of up to 25 steps; a leak fails with the shrunk history printed."""
    run_histories(CI_HISTORIES, 25, machine=NodesLeakMachine, extra=network_line)
    assert NodesLeakMachine.forged_applied == NodesLeakMachine.forged_unexpected == 0
    audit_nodes()


def test_a_malicious_peer_gets_nothing_applied_on_any_node(three_nodes: list[Node]) -> None:
    """Every municipality in turn writes, on every other agency's streams it holds, an event of every shared type
    it has seen them publish (in their name and in its own) and opens streams in their names; sent to every other
    node, every one is parked or held back, none applied, and after a full sync nothing is left waiting, X's and
    Y's protection is as the model left it, and every log verifies. Threat: a peer agency."""
    run_histories(2, 25, machine=NodesLeakMachine, extra=network_line)  # people and events to forge on
    machine = NodesLeakMachine()
    machine.setup_nodes()
    before = [n.app.max_position() for n in three_nodes]
    sent = NodesLeakMachine.forged
    for attacker in MUNICIPALITIES:
        app = three_nodes[NODE_OF[attacker]].app
        for f in forgeries(app, attacker, [m for m in MUNICIPALITIES if m != attacker]):
            machine.send_forgery(NODE_OF[attacker], f)
    assert NodesLeakMachine.forged - sent >= 5 * 4 * 5, "too few forgeries: the histories left little to forge on"
    assert [n.app.max_position() for n in three_nodes] == before, "a forgery was applied"
    machine.deliver_everything(check=False)
    for node in three_nodes:
        assert PendingStore(node.app, node.engine).waiting() == []
    assert NodesLeakMachine.forged_applied == NodesLeakMachine.forged_unexpected == 0
    audit_nodes()


@pytest.mark.long
def test_ten_thousand_histories_across_three_nodes_leak_nothing(three_nodes: list[Node], tmp_path: Path) -> None:
    """The long job: FLAGLEDGER_NODE_HISTORIES histories (default 10,000) of up to 30 steps each."""
    out = os.environ.get("FLAGLEDGER_HISTORIES_REPORT")
    fresh = itertools.count(1)

    def rotate() -> None:
        audit_nodes()
        close_nodes()
        fresh_nodes(tmp_path / f"nodes{next(fresh)}")

    run_histories(
        LONG_HISTORIES,
        30,
        Path(out) if out else None,
        machine=NodesLeakMachine,
        extra=network_line,
        rotate=rotate,
        segment=ROTATE_EVERY,
    )
    assert NodesLeakMachine.forged_applied == NodesLeakMachine.forged_unexpected == 0
    audit_nodes()
