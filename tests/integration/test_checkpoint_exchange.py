"""Checkpoints travel with the shared events. A peer checks each one extends the last it holds from that
agency; a fork (the agency showing it a history that does not extend what it signed before) raises the
alarm, parks the checkpoint and holds every further event from that agency until an operator acts."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.broker import wait_for
from consumers.inbox import Consumer
from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import Relay, publishable
from consumers.parked import parked, replay_parked
from consumers.settings import KafkaSettings
from ledger.app import Actor
from ledger.app.checkpoints import statement
from ledger.app.holds import holds, lift_hold
from ledger.audit.verify import verify_log
from ledger.domain.checkpoints import CheckpointLog
from ledger.errors import IntegrityError, StateConflict
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.support import store
from tests.support.tansu import broker
from tests.support.trust import trust


@pytest.fixture
def pair(make_node: Callable[..., Node], tmp_path: Path, backend: str | None) -> tuple[Node, Node]:
    """Origin A (on each backend) and peer B, each trusting the other's key."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key, database_url=backend)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    trust(b, a)
    return a, b


def ship(src: Node, dst: Node, after: int = 0) -> tuple[int, list[tuple[bytes, Outcome]]]:
    pending = PendingStore(dst.app, dst.engine)
    done, last = [], after
    for position, _, raw in publishable(src.app, after):
        done.append((raw, ingest(dst.app, raw, pending)))
        last = position
    dst.projector.catch_up()
    return last, done


def _protect(node: Node, agency: str, x: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), x, ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def _fork(origin: Node) -> None:
    """A compromised origin signs a checkpoint of a history other than the one it showed before:
    properly signed with its key, naming its real predecessor, but the root does not extend it."""
    app = origin.app
    cplog = app.load(CheckpointLog, CheckpointLog.create_id(A), "checkpoints")
    signer = app.signers[A]
    size, root, time = cplog.tree_size + 5, secrets.token_bytes(32), app.clock().isoformat()
    cplog.sign(
        tree_size=size,
        root=root.hex(),
        time=time,
        key_id=signer.key_id,
        signature=signer.sign(statement(A, size, root, time, signer.key_id)).hex(),
        prev_size=cplog.tree_size,
        prev_root=cplog.root,
        consistency=[secrets.token_bytes(32).hex()],
    )
    app.save_as(A, cplog)


def test_consistent_checkpoints_are_applied_and_verified_by_the_peer(pair: tuple[Node, Node], person) -> None:
    a, b = pair
    a.app.sign_checkpoint()
    last, done = ship(a, b)
    assert [o.kind for _, o in done] and all(o.kind == "applied" for _, o in done)
    _protect(a, A, person())
    a.app.sign_checkpoint()
    _, done = ship(a, b, last)
    assert all(o.kind == "applied" for _, o in done)
    report = verify_log(b.app)  # the peer re-checks A's signatures and consistency proofs offline
    assert report.ok and report.checkpoints == 2


def test_a_fork_served_to_a_peer_is_parked_and_holds_the_agency(
    pair: tuple[Node, Node], person, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    a.app.sign_checkpoint()
    last, _ = ship(a, b)
    _fork(a)
    with caplog.at_level(logging.ERROR, logger="flagledger.alarm"):
        last, done = ship(a, b, last)
    [(_, fork)] = done
    assert fork.kind == "parked" and fork.code == "checkpoint_fork" and "not consistent" in fork.reason
    assert any("ALARM" in r.getMessage() and A in r.getMessage() for r in caplog.records)
    assert [h["agency"] for h in holds(b.app)] == [A]

    x = person()
    _protect(a, A, x)  # A keeps publishing: nothing of it is applied at B, nothing is dropped
    before = b.app.max_position()
    last, done = ship(a, b, last)
    assert done and all(o.kind == "parked" and o.code == "agency_held" for _, o in done)
    assert b.app.max_position() == before
    assert not b.app.flag_state or not b.app.flag_state.flags_for(b.app.subject(x))

    with pytest.raises(StateConflict):
        lift_hold(b.app, Actor(B, "admin"), B, "not held")
    lift_hold(b.app, Actor(B, "admin"), A, "called A's administrator; the fork was a restored backup")
    assert holds(b.app) == []
    pending = PendingStore(b.app, b.engine)
    replayed = [ingest(b.app, raw, pending).kind for raw, _ in done]
    assert "parked" not in replayed and "applied" in replayed
    b.projector.catch_up()
    assert b.app.flag_state is not None and b.app.flag_state.flags_for(b.app.subject(x))


def test_an_origin_whose_own_log_was_rewritten_refuses_to_sign(pair: tuple[Node, Node], person) -> None:
    a, _ = pair
    a.app.sign_checkpoint()
    _protect(a, A, person())
    rows = store.rows(a)
    store.delete(a, rows[2][0])  # an event the first checkpoint covers
    with pytest.raises(IntegrityError) as err:
        a.app.sign_checkpoint()
    assert err.value.code == "checkpoint_mismatch"


# -- over a real broker: the parked reasons are what `flagledger consumers parked` shows -------------------------


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


@pytest.mark.kafka
def test_over_the_broker_the_fork_and_held_events_are_listed_and_an_operator_releases_them(
    bootstrap: str, make_node: Callable[..., Node], tmp_path: Path, person, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.cli.main import main

    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(b, a)
    group = f"g{uuid.uuid4().hex[:8]}"
    cfg = KafkaSettings(
        bootstrap_servers=bootstrap, topic=f"events-{group}", dead_letter_topic=f"dlq-{group}", group_id=group,
        session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_interval_ms=10000, fetch_max_wait_ms=10,
    )  # fmt: skip
    relay, consumer = Relay(a, cfg), Consumer(b, cfg)
    try:
        a.app.sign_checkpoint()
        _fork(a)
        x = person()
        _protect(a, A, x)
        relay.run_once()
        assert wait_for(lambda: consumer.poll_once(500) >= 0 and len(parked(b)) >= 2, 30), parked(b)
    finally:
        relay.close()
        consumer.close()
    capsys.readouterr()
    assert main(["--data-dir", str(b.config.data_dir), "consumers", "parked"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["code"] == "checkpoint_fork" and "on hold" in rows[0]["reason"]
    assert {r["code"] for r in rows[1:]} == {"agency_held"}
    assert main(["--data-dir", str(b.config.data_dir), "audit", "holds"]) == 0
    assert json.loads(capsys.readouterr().out)["agency"] == A
    code = main(["--data-dir", str(b.config.data_dir), "audit", "release", A, "--as", f"{B}/admin", "--note", "ok"])
    assert code == 0
    capsys.readouterr()
    outcomes = [replay_parked(b, r["id"]).kind for r in rows[1:]]
    assert "parked" not in outcomes
    assert b.app.flag_state is not None and b.app.flag_state.flags_for(b.app.subject(x))


@pytest.mark.kafka
def test_the_long_running_node_signs_checkpoints_periodically(
    bootstrap: str, make_node: Callable[..., Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.app.checkpoints import CHECKPOINT_TOPIC, latest_checkpoint
    from ledger.cli.main import main

    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a")
    group = f"g{uuid.uuid4().hex[:8]}"
    for name, value in (("BOOTSTRAP_SERVERS", bootstrap), ("TOPIC", f"events-{group}"), ("GROUP_ID", group),
                        ("DEAD_LETTER_TOPIC", f"dlq-{group}"), ("FETCH_MAX_WAIT_MS", "10")):  # fmt: skip
        monkeypatch.setenv(f"FLAGLEDGER_KAFKA_{name}", value)
    assert main(["--data-dir", str(a.config.data_dir), "node", "--seconds", "3", "--checkpoint-every", "0.2"]) == 0
    signed = [r for r in store.rows(a) if r[3] == CHECKPOINT_TOPIC]
    assert len(signed) == 1  # signed at start; later rounds found only the checkpoint itself new
    assert latest_checkpoint(a.app).tree_size == len(store.rows(a)) - 2


def test_a_second_version_of_a_held_checkpoint_is_equivocation_and_holds_the_agency(pair: tuple[Node, Node]) -> None:
    """A shows B one checkpoint, then another with the same place in its checkpoint stream (both signed by A)."""
    import hashlib

    from ledger.log.envelope import Envelope, seal_batch
    from ledger.log.header import Header

    a, b = pair
    a.app.sign_checkpoint()
    _, done = ship(a, b)
    shown = next(Envelope.from_bytes(raw) for raw, _ in done if b"CheckpointSigned" in raw)
    payload = shown.payload.replace(b'"time":"', b'"time":"1', 1)  # any other content under the same version
    assert payload != shown.payload
    h = shown.header
    header = Header(
        event_id=uuid.uuid4().hex, origin=h.origin, key_id=h.key_id, stream=h.stream, version=h.version,
        prev=h.prev, topic=h.topic, time=h.time, digest=hashlib.sha256(payload).hexdigest(),
    ).to_bytes()  # fmt: skip
    signer = a.app.signers[A]
    other = seal_batch([header], [payload], signer.key_id, signer.sign)[0]
    outcome = ingest(b.app, other.to_bytes(), PendingStore(b.app, b.engine))
    assert outcome.kind == "parked" and outcome.code == "checkpoint_fork" and "differs" in outcome.reason
    assert [h["agency"] for h in holds(b.app)] == [A]
    assert ingest(b.app, done[0][0]).code == "agency_held"  # even a duplicate waits for the operator


def test_a_peer_s_copy_of_the_latest_checkpoint_reveals_a_truncated_origin_log(
    pair: tuple[Node, Node], person, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.cli.main import main

    a, b = pair
    _protect(a, A, person())
    a.app.sign_checkpoint()
    ship(a, b)
    *_, flag, checkpoint = store.batches(a)  # whole batches: the flag's execution and the checkpoint covering it
    for position in flag + checkpoint:
        store.delete(a, position)
    store.forge_head(a)  # the head row holds no signature: an attacker rewrites it to match
    assert verify_log(a.app).ok  # from inside A's log alone, the tail is not missed
    kept = str(tmp_path / "from-b.json")
    at_b = ["--data-dir", str(b.config.data_dir)]
    assert main([*at_b, "audit", "latest-checkpoint", "--agency", A, "--export", kept]) == 0
    capsys.readouterr()
    code = main(["--data-dir", str(a.config.data_dir), "audit", "verify", "--quiet", "--checkpoint", kept])
    assert code == 6 and "[truncated]" in capsys.readouterr().err


def test_a_forked_checkpoint_waiting_behind_a_gap_is_parked_not_lost(pair: tuple[Node, Node]) -> None:
    a, b = pair
    a.app.sign_checkpoint()
    _fork(a)
    msgs = [raw for _, _, raw in publishable(a.app)]
    cps = [raw for raw in msgs if b"CheckpointLog" in raw]
    _opened, signed, forked = cps  # Opened, the true checkpoint, the fork
    pending = PendingStore(b.app, b.engine)
    kept: list[tuple[Outcome, bytes]] = []
    pending.on_parked = lambda outcome, raw: kept.append((outcome, raw))
    for raw in msgs:
        if raw is not signed:
            ingest(b.app, raw, pending)  # the fork arrives first and waits for the true checkpoint
    assert ingest(b.app, signed, pending).kind == "applied"
    [(outcome, raw)] = kept
    assert raw == forked and outcome.code == "checkpoint_fork"
    assert [h["agency"] for h in holds(b.app)] == [A]
    assert pending.waiting() == []
