"""kill -9 between a batch's data-key commit and its log commit (issue 23): no event is left undecryptable.

A batch's new persons get their data keys in one commit of ``datakeys.sqlite`` before the batch is signed and
written to the log (``DataKeys.for_subjects``). A process killed between the two leaves keys that seal nothing —
never an event whose key was not kept. The child is a real process recording listings of new persons (the path
a read of protected details takes), killed at the fault point right after the key commit, or at a random time.

Threats: administrator/shell user (a kill -9, or the OOM killer or a power cut alike, mid-write: the record of who
read a victim's protected details must stay readable evidence, not turn into ciphertext nobody can open); insider
(the keys a killed batch left behind are still found, and destroyed, by the person's erasure).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger.audit.verify import verify_log
from ledger.domain.identity import AccessRecord
from ledger.log.subject_payload import ENC_DK1
from ledger.runtime.bootstrap import Node, init_node, open_node
from tests.conftest import DEFAULT_AGENCIES, A, enrol_standard_staff

PURPOSE = "kill test"
BATCH = 50

# the child: batch after batch of listings of new persons, each batch's pseudonyms printed once it is recorded
_CHILD = f"""
import sys
from pathlib import Path
from ledger.app import Actor
from ledger.domain.types import Action
from ledger.runtime.bootstrap import open_node
node = open_node(Path(sys.argv[1]))
i = int(sys.argv[2])  # the first batch's number (a run's persons are its own)
while True:
    people = [f"p{{i:08d}}{{j:024x}}" for j in range({BATCH})]
    node.app.record_listing(Actor({A!r}, "rev"), people, "protected details", {PURPOSE!r}, [Action.VIEW_PROTECTED])
    print(" ".join(node.app.subject(p) for p in people), flush=True)
    i += 1
"""


def _child(data_dir: Path, faultpoint: str | None, first: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("FLAGLEDGER_FAULTPOINT", None)
    if faultpoint:
        env["FLAGLEDGER_FAULTPOINT"] = faultpoint
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data_dir), str(first)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _recorded_reads(node: Node) -> dict[str, int]:
    """Subject → reads recorded for it, every event of the log opened (raises if one does not decrypt)."""
    mapper = node.app.signed_mapper
    reads: dict[str, int] = {}
    for _, _, env in node.app.envelopes():
        if env.header.enc != ENC_DK1:
            continue
        event = mapper.decode(env)  # opens the payload under its data key: ErasedPayload if the key is gone
        if isinstance(event, AccessRecord.ProtectedDetailsRead) and event.purpose == PURPOSE:
            reads[event.subject] = reads.get(event.subject, 0) + 1
    return reads


def _check_after(data_dir: Path, printed: list[str], killed_batch: list[str] | None) -> None:
    node = open_node(data_dir)
    try:
        reads = _recorded_reads(node)
        done = [s for line in printed for s in line.split()]
        assert done and all(reads.get(s) == 1 for s in done), "every batch the child saw recorded is readable"
        dk = node.app.signed_mapper.data_keys
        assert dk is not None
        assert all(dk.refs_of(s) for s in reads), "every recorded read's person has their key"
        if killed_batch is not None:
            assert set(reads) == set(done), "the batch killed after its key commit wrote no event"
            # its keys were committed first: kept, each person's, so their erasure destroys them too
            assert all(len(dk.refs_of(s)) == 1 for s in killed_batch)
        report = verify_log(node.app)
        assert report.ok, report
    finally:
        node.close()


def test_a_kill_right_after_the_key_commit_leaves_keys_and_no_event(tmp_path: Path, backend: str | None) -> None:
    """Administrator/shell user (kill -9 mid-write); insider (the keys left behind are the persons', erasable)."""
    data_dir = tmp_path / "node"
    node = init_node(data_dir, DEFAULT_AGENCIES, database_url=backend)
    enrol_standard_staff(node)
    node.close()
    child = _child(data_dir, "datakeys.committed:3")  # the third batch dies between its two commits
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    printed = out.splitlines()
    assert len(printed) == 2, "two batches recorded before the kill"
    node = open_node(data_dir)
    try:
        # the third batch's persons: the child's own pseudonymisation of the listing it was writing
        third = [node.app.subject(f"p{2:08d}{j:024x}") for j in range(BATCH)]
    finally:
        node.close()
    _check_after(data_dir, printed, third)
    # the node goes on: the persons of the lost batch are listed again under the keys already kept
    child = _child(data_dir, None, first=2)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == third
    finally:
        child.kill()
        child.communicate()
    node = open_node(data_dir)
    try:
        reads, dk = _recorded_reads(node), node.app.signed_mapper.data_keys
        assert dk is not None and all(reads.get(s) == 1 for s in third)
        assert all(len(dk.refs_of(s)) == 1 for s in third), "listed again under the key the killed batch kept"
    finally:
        node.close()


def test_kills_at_random_times_leave_every_event_readable(tmp_path: Path) -> None:
    """Administrator/shell user: kill -9 at any moment of a run of listings of new persons (most of a batch's
    time is its two synced commits, so kills land between them too) never leaves an event undecryptable."""
    data_dir = tmp_path / "node"
    node = init_node(data_dir, DEFAULT_AGENCIES)
    enrol_standard_staff(node)
    node.close()
    rng = random.Random()
    printed: list[str] = []
    for run in range(3):
        child = _child(data_dir, None, first=run * 1_000_000)
        assert child.stdout is not None
        first = child.stdout.readline()  # started and writing
        time.sleep(rng.uniform(0.05, 0.5))
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        printed += [first.strip(), *out.splitlines()]
        _check_after(data_dir, [line for line in printed if line], None)
