"""Leak-freedom across three agency nodes joined by ``consumers.ingest``, the network in the model's hands.

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

from ledger.bootstrap import Node, init_node
from tests.adversarial.test_leak_freedom import ROTATE_EVERY, run_histories
from tests.adversarial.threat import AGENCIES, prepare_node
from tests.adversarial.threat_nodes import LAYOUT, NodesLeakMachine, fresh_network
from tests.support.trust import trust_everyone

CI_HISTORIES = int(os.environ.get("FLAGLEDGER_CI_NODE_HISTORIES", "4"))
LONG_HISTORIES = int(os.environ.get("FLAGLEDGER_NODE_HISTORIES", "10000"))


def fresh_nodes(root: Path) -> list[Node]:
    """Nodes {A, D}, {B, E}, {C}: one pseudonym secret, every key vouched for, shared by a run's histories."""
    root.mkdir(parents=True, exist_ok=True)
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    specs = {a.code: a for a in AGENCIES}
    nodes = [init_node(root / f"node{i}", [specs[c] for c in codes], pseudonym_key_file=key)
             for i, codes in enumerate(LAYOUT)]
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


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    yield fresh_nodes(tmp_path_factory.mktemp("leak-nodes"))
    close_nodes()  # the latest three (the long run rotates them)


def network_line() -> str:
    return (f"deliveries={NodesLeakMachine.deliveries} held_back={NodesLeakMachine.held_back} "
            f"duplicates={NodesLeakMachine.duplicates}")


def test_generated_histories_across_three_nodes_leak_nothing(three_nodes: list[Node]) -> None:
    """CI: a handful of histories of up to 25 steps; a leak fails with the shrunk history printed."""
    run_histories(CI_HISTORIES, 25, machine=NodesLeakMachine, extra=network_line)


@pytest.mark.long
def test_ten_thousand_histories_across_three_nodes_leak_nothing(three_nodes: list[Node], tmp_path: Path) -> None:
    """The long job: FLAGLEDGER_NODE_HISTORIES histories (default 10,000) of up to 30 steps each."""
    out = os.environ.get("FLAGLEDGER_HISTORIES_REPORT")
    fresh = itertools.count(1)

    def rotate() -> None:
        close_nodes()
        fresh_nodes(tmp_path / f"nodes{next(fresh)}")

    run_histories(LONG_HISTORIES, 30, Path(out) if out else None, machine=NodesLeakMachine, extra=network_line,
                  rotate=rotate, segment=ROTATE_EVERY)
