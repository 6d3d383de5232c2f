"""The node's projections caught up by a second process (``ledger.runtime.follower``).

Stories: what the ledger appends reaches the views through the child, not the writer; a child killed in
the middle of a page is replaced and its replacement ends exactly where a rebuild ends (nothing applied
twice, nothing lost); the child stops when the node closes it or dies; a child that cannot open the node
says why. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.domain.provision import ProvisionRequest
from ledger.errors import StorageError
from ledger.faultpoint import ENV as FAULTPOINT_ENV
from ledger.runtime.bootstrap import Node
from ledger.runtime.follower import Follower
from tests.conftest import A, B
from tests.integration.test_projections_rebuild import snapshot
from tests.support.people import individual_number

ROOT = Path(__file__).resolve().parents[2]


def provision_requests(node: Node, requests: int) -> None:
    """Requests from A answered at B, saved 50 at a time without reading any view."""
    for i in range(0, requests, 50):
        batch = []
        for _ in range(min(50, requests - i)):
            r = ProvisionRequest(
                agency=B,
                querier=A,
                subject=f"p{uuid.uuid4().hex}",
                legal_item=74,
                procedure="児童手当",
                info_kind="地方税関係情報",
                applicant="unknown",
            )
            r.provide_automatically()
            batch.append(r)
        node.app.save_as(B, *batch)


def behind(node: Node) -> int:
    return node.app.max_position() - min(node.projector.positions().values())


@pytest.fixture
def follower(node: Node) -> Iterator[Follower]:
    f = Follower(node.config.data_dir, node.engine, idle_seconds=0.2)
    yield f
    f.close()


def test_what_the_ledger_appends_reaches_the_views_through_the_child(node: Node, follower: Follower) -> None:
    node.projector.catch_up()
    follower.start()
    number = individual_number(random.Random(3))
    rid = node.app.request_flags(Actor(B, "req"), number, ["NO_AUTO_RESPONSE"])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    provision_requests(node, 300)  # after the flag: the writer itself has not projected these
    assert behind(node) > 0
    follower.poke()
    assert follower.wait_for(node.app.max_position(), 60)
    assert behind(node) == 0
    # read without catching up: what is there, the child put there
    assert node.state.flags_for(node.app.subject(number)).get("NO_AUTO_RESPONSE") == [B]
    incremental = snapshot(node)
    node.projector.rebuild()
    assert snapshot(node) == incremental


def test_a_child_killed_mid_page_is_replaced_and_nothing_is_applied_twice(
    node: Node, follower: Follower, monkeypatch: pytest.MonkeyPatch
) -> None:
    provision_requests(node, 600)  # 1,200 events: the first page (1,000) dies after 700
    monkeypatch.setenv(FAULTPOINT_ENV, "projector.mid_page:700")
    follower.start()
    monkeypatch.delenv(FAULTPOINT_ENV)  # the replacement runs clean
    follower.poke()
    deadline = time.monotonic() + 60
    while follower.alive():
        assert time.monotonic() < deadline, "the fault point never fired"
        time.sleep(0.05)
    assert min(node.projector.positions().values()) == 0  # the killed page left nothing behind
    assert follower.ensure_running() is False  # noticed, replaced; the caller projects inline this round
    assert follower.restarts == 1 and follower.alive()
    assert follower.wait_for(node.app.max_position(), 60)
    incremental = snapshot(node)
    node.projector.rebuild()
    assert snapshot(node) == incremental
    assert len(incremental["portal_records"]) == 600


def test_the_child_stops_when_closed(node: Node, follower: Follower) -> None:
    follower.start()
    pid = follower.pid
    assert pid is not None
    follower.close(timeout=10)
    assert not follower.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_child_stops_when_its_node_process_dies(node: Node) -> None:
    # a node process SIGKILLed (OOM killer, power cut on a container): its follower must not linger
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from ledger.runtime.bootstrap import open_node
        from ledger.runtime.follower import Follower
        node = open_node(Path({str(node.config.data_dir)!r}))
        f = Follower(node.config.data_dir, node.engine)
        f.start()
        print(f.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the projections process outlived its node"
        time.sleep(0.05)


def test_a_child_that_cannot_open_the_node_says_why(tmp_path: Path, node: Node) -> None:
    f = Follower(tmp_path / "no-such-node", node.engine)
    with pytest.raises(StorageError, match=r"projections process did not start .*no-such-node"):
        f.start(timeout=60)
    assert not f.alive()
    # the node loop asks each round: one new attempt, then inline projection until the pause has passed
    assert f.ensure_running() is False and f.restarts == 1
    assert f.ensure_running() is False and f.restarts == 1
