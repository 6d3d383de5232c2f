"""Checkpoints over the local log: tampering the per-stream chains cannot see (a deleted single-event stream,
rows of different streams reordered, a truncated log, a forged or lying checkpoint) is caught by
`audit verify` with the first leaf index it can no longer vouch for; inclusion proofs verify offline.
SQLite and PostgreSQL, encrypted at rest."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import pytest

from ledger.app import Actor
from ledger.app.checkpoints import Checkpoint, latest_checkpoint, statement
from ledger.audit.proofs import build_proof, check_proof
from ledger.audit.verify import verify_log
from ledger.domain.checkpoints import CheckpointLog
from ledger.errors import IntegrityError, NotFoundError
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B
from tests.support import store

AGENCIES = (AgencySpec(B, "B市", "municipality"),)
AUD = Actor(B, "aud")


@pytest.fixture
def logged(make_node: Callable[..., Node], backend: str | None, person: Callable[[], str]) -> Node:
    node = make_node(AGENCIES, database_url=backend)
    rid = node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    node.extra["person"] = person()
    return node


def _read(node: Node, purpose: str) -> int:
    """A read of protected details: a stream of one event, which no chain link protects."""
    node.app.record_access(AUD, str(node.extra["person"]), "address", purpose)
    return node.app.max_position()


def _sign(node: Node) -> Checkpoint:
    (cp,) = node.app.sign_checkpoint(B)
    return cp


def test_checkpoints_verify_are_counted_and_an_idle_node_signs_nothing(logged: Node) -> None:
    first = _sign(logged)
    assert first.tree_size == len(store.rows(logged)) - 2  # all but the checkpoint log's Opened and first Signed
    assert logged.app.sign_checkpoint(B) == []  # only the checkpoint is new
    _read(logged, "court order")
    second = _sign(logged)
    assert (second.prev_size, second.prev_root) == (first.tree_size, first.root)
    report = verify_log(logged.app)
    assert report.ok and report.checkpoints == 2
    assert latest_checkpoint(logged.app) == second


def test_a_deleted_read_record_is_caught_by_the_next_signed_batch(logged: Node) -> None:
    before = _sign(logged)
    deleted = _read(logged, "court order")
    _sign(logged)
    store.delete(logged, deleted)
    report = verify_log(logged.app)
    assert report.first_bad is not None and report.first_bad.code == "missing"
    # the checkpoint's batch signed the log before it: the deleted read is named, right after `before`'s
    # own two events (its log's Opened and the checkpoint)
    assert report.first_bad.position == deleted
    assert report.first_bad.index == before.tree_size + 2


def test_reordered_reads_of_different_streams_are_caught_and_the_node_refuses_to_sign(logged: Node) -> None:
    before = _sign(logged)
    p, q = _read(logged, "first"), _read(logged, "second")
    _sign(logged)
    _swap(logged, p, q)
    report = verify_log(logged.app)
    assert report.first_bad is not None and report.first_bad.code in ("missing", "moved")
    assert report.first_bad.position == p and report.first_bad.index == before.tree_size + 2
    _read(logged, "third")
    with pytest.raises(IntegrityError) as err:
        logged.app.sign_checkpoint(B)
    assert err.value.code == "checkpoint_mismatch"


def test_a_truncated_log_is_caught_against_a_checkpoint_kept_elsewhere(logged: Node) -> None:
    kept = _sign(logged)  # e.g. exported with `audit checkpoint --export`, or held by a peer
    rows = store.rows(logged)
    assert kept.tree_size == len(rows) - 2
    # the last batch before the checkpoint and the checkpoint's own (its log's Opened, the Signed): whole
    # batches, so no batch shows a missing event
    *_, flag, checkpoint = store.batches(logged)
    assert len(checkpoint) == 2
    for position in flag + checkpoint:
        store.delete(logged, position)
    tripped = verify_log(logged.app)  # the head row still counts them…
    assert tripped.first_bad is not None and tripped.first_bad.code == "truncated"
    store.forge_head(logged)  # …until the attacker rewrites it too: it holds no signature
    assert verify_log(logged.app).ok  # nothing inside the log shows the tail is gone…
    report = verify_log(logged.app, trusted=[Checkpoint.from_json(kept.to_json())])
    assert report.first_bad is not None and report.first_bad.code == "truncated"
    # …but the kept checkpoint names the first missing leaf and position
    assert report.first_bad.index == kept.tree_size - len(flag) and report.first_bad.position == flag[0]


def test_events_deleted_just_before_a_checkpoint_are_caught(logged: Node) -> None:
    before = _sign(logged)
    _read(logged, "a")
    last = _read(logged, "b")
    _sign(logged)
    store.delete(logged, last)
    report = verify_log(logged.app)
    assert report.first_bad is not None and report.first_bad.code == "missing"
    assert report.first_bad.position == last and report.first_bad.index == before.tree_size + 3


def _forge_checkpoint(node: Node, root: bytes, signature: bytes | None = None) -> int:
    """Record a checkpoint through the app (so its envelope is validly sealed) with a chosen root/signature."""
    app = node.app
    cplog = app.load(CheckpointLog, CheckpointLog.create_id(B), "checkpoints")
    signer = app.signers[B]
    size = len(store.rows(node))
    time = app.clock().isoformat()
    sig = signature if signature is not None else signer.sign(statement(B, size, root, time, signer.key_id))
    cplog.sign(
        tree_size=size,
        root=root.hex(),
        time=time,
        key_id=signer.key_id,
        signature=sig.hex(),
        prev_size=cplog.tree_size,
        prev_root=cplog.root,
        consistency=[],
    )
    app.save_as(B, cplog)
    return app.max_position()


def test_a_checkpoint_with_a_forged_signature_is_named(logged: Node) -> None:
    _sign(logged)
    _read(logged, "x")
    position = _forge_checkpoint(logged, b"\x01" * 32, signature=b"\x00" * 64)
    report = verify_log(logged.app)
    assert report.first_bad is not None and report.first_bad.code == "bad_checkpoint"
    assert report.first_bad.position == position
    assert report.first_bad.index == len(store.rows(logged)) - 1


def test_a_validly_signed_checkpoint_that_lies_about_the_log_is_named(logged: Node) -> None:
    _sign(logged)
    _read(logged, "x")
    _forge_checkpoint(logged, b"\x01" * 32)
    report = verify_log(logged.app)
    assert report.first_bad is not None and report.first_bad.code == "checkpoint_fork"  # no consistency proof


def test_an_inclusion_proof_verifies_offline_and_a_newer_event_needs_a_new_checkpoint(logged: Node) -> None:
    position = _read(logged, "proved")
    cp = _sign(logged)
    proof = build_proof(logged.app, position=position)
    result = check_proof(proof, logged.app.signers[B].public_raw.hex())
    assert result["ok"] and result["tree_size"] == cp.tree_size and result["root"] == cp.root.hex()
    assert build_proof(logged.app, event_id=proof["event_id"])["leaf_index"] == proof["leaf_index"]
    later = _read(logged, "later")
    with pytest.raises(NotFoundError):
        build_proof(logged.app, position=later)


def _swap(node: Node, p: int, q: int) -> None:
    """Exchange two whole rows: the events trade places in the log's total order."""
    if node.config.database_url:
        with psycopg.connect(node.config.database_url) as conn:
            cols = "originator_id, originator_version, topic, state"
            got = {
                r[0]: r[1:]
                for r in conn.execute(
                    f"SELECT notification_id, {cols} FROM flagledger_events WHERE notification_id IN (%s, %s)",
                    (p, q),
                ).fetchall()
            }
            conn.execute("DELETE FROM flagledger_events WHERE notification_id IN (%s, %s)", (p, q))
            for here, there in ((p, q), (q, p)):
                conn.execute(
                    f"INSERT INTO flagledger_events (notification_id, {cols}) VALUES (%s, %s, %s, %s, %s)",
                    (here, *got[there]),
                )
    else:
        with sqlite3.connect(node.config.data_dir / "ledger.sqlite") as conn:
            cols = "originator_id, originator_version, topic, state"
            got = {
                r[0]: r[1:]
                for r in conn.execute(
                    f"SELECT rowid, {cols} FROM stored_events WHERE rowid IN (?, ?)", (p, q)
                ).fetchall()
            }
            conn.execute("DELETE FROM stored_events WHERE rowid IN (?, ?)", (p, q))
            for here, there in ((p, q), (q, p)):
                conn.execute(f"INSERT INTO stored_events (rowid, {cols}) VALUES (?, ?, ?, ?, ?)", (here, *got[there]))
    node.app.signed_store.forget()
