"""An attacker with write access to the database edits, deletes, reorders or forges events;
`audit verify` names the first bad event every time, on SQLite and PostgreSQL, encrypted or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.errors import IntegrityError
from ledger.log.envelope import Envelope, seal_batch
from ledger.log.header import Header
from ledger.log.signing import Signer
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B
from tests.support import store

AGENCIES = (AgencySpec(B, "B市", "municipality"),)


@pytest.fixture(params=[True, False], ids=["encrypted", "plain"])
def protected(request: pytest.FixtureRequest, make_node: Callable[..., Node], backend: str | None, person) -> Node:
    node = make_node(AGENCIES, database_url=backend, encryption=request.param)
    app = node.app
    subject = app.subject(person())
    node.extra["subject"] = subject
    rid = app.request_flags(Actor(B, "req"), subject, ["NON_DISCLOSURE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert verify_log(app).ok
    return node


def _stream_rows(node: Node, topic_prefix: str) -> list[tuple[int, str, int, str, bytes]]:
    rows = [r for r in store.rows(node) if r[3].startswith(topic_prefix)]
    assert rows, topic_prefix
    return rows


def test_an_edited_row_is_named(protected: Node) -> None:
    pos, _, _, _, state = _stream_rows(protected, "ledger.domain.flags:Protection.FlagsSet")[0]
    edited = (
        state.replace(b"NON_DISCLOSURE", b"NON_DISCLOSURF")
        if b"NON_DISCLOSURE" in state
        else (state[:40] + bytes([state[40] ^ 1]) + state[41:])
    )
    store.set_state(protected, pos, edited)
    report = verify_log(protected.app)
    assert report.first_bad is not None and report.first_bad.position == pos
    with pytest.raises(IntegrityError):
        protected.app.protection(B, str(protected.extra["subject"]))


def test_a_deleted_middle_event_is_named_where_it_was(protected: Node) -> None:
    """An insider deletes an approval: its stream jumps, and the hole in the positions names the deleted one."""
    _requested, approved, executed = _stream_rows(protected, "ledger.domain.flags:FlagRequest.")
    store.delete(protected, approved[0])
    report = verify_log(protected.app)
    assert report.first_bad is not None
    assert report.first_bad.position == approved[0]
    assert report.first_bad.code == "missing"
    assert f"at position {executed[0]}" in report.first_bad.reason


def test_swapped_events_are_named(protected: Node) -> None:
    requested, approved, _ = _stream_rows(protected, "ledger.domain.flags:FlagRequest.")
    store.set_state(protected, requested[0], approved[4])
    store.set_state(protected, approved[0], requested[4])
    report = verify_log(protected.app)
    assert report.first_bad is not None and report.first_bad.position == requested[0]


def _forge(node: Node, signer: Signer, stream: str, time: str) -> bytes:
    payload = b'{"agency":"131024","subject":"pforged","timestamp":{"_type_":"datetime_iso","_data_":"' + (
        time.encode() + b'"}}'
    )
    import hashlib

    header = Header(
        event_id="f" * 32,
        origin=B,
        key_id=signer.key_id,
        stream=stream,
        version=1,
        prev="0" * 64,
        topic="ledger.domain.flags:Protection.Opened",
        time=time,
        digest=hashlib.sha256(payload).hexdigest(),
    ).to_bytes()
    env: Envelope = seal_batch([header], [payload], signer.key_id, signer.sign)[0]
    return env.to_bytes()


def _insert(node: Node, stream: str, raw: bytes) -> None:
    from uuid import UUID

    from eventsourcing.persistence import StoredEvent

    node.app.recorder.insert_events(
        [StoredEvent(UUID(stream), 1, "ledger.domain.flags:Protection.Opened", node.app.signed_mapper.protect(raw))]
    )


def test_an_event_signed_by_a_rogue_key_claiming_the_agency_is_rejected(protected: Node) -> None:
    rogue = Signer.generate(B)
    real = protected.app.signers[B]
    rogue.key_id = real.key_id  # claims to be B's real key
    stream = "00000000-0000-4000-8000-000000000001"
    _insert(protected, stream, _forge(protected, rogue, stream, _now()))
    report = verify_log(protected.app)
    assert report.first_bad is not None and report.first_bad.code == "bad_signature"
    assert report.first_bad.stream == stream


def test_an_event_backdated_before_its_key_was_valid_is_rejected(protected: Node) -> None:
    stream = "00000000-0000-4000-8000-000000000003"
    _insert(protected, stream, _forge(protected, protected.app.signers[B], stream, "2020-01-01T00:00:00+00:00"))
    report = verify_log(protected.app)
    assert report.first_bad is not None and report.first_bad.code == "key_not_yet_valid"


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def test_an_event_signed_by_an_unknown_key_is_rejected(protected: Node) -> None:
    stranger = Signer.generate(B)
    stream = "00000000-0000-4000-8000-000000000002"
    _insert(protected, stream, _forge(protected, stranger, stream, _now()))
    report = verify_log(protected.app)
    assert report.first_bad is not None and report.first_bad.code == "unknown_key"


def test_cli_audit_verify_fails_and_names_the_position(protected: Node, capsys: pytest.CaptureFixture[str]) -> None:
    from ledger.cli.main import main

    pos = _stream_rows(protected, "ledger.domain.flags:Protection.FlagsSet")[0][0]
    rows = {r[0]: r[4] for r in store.rows(protected)}
    state = rows[pos]
    store.set_state(protected, pos, state[:-1] + bytes([state[-1] ^ 0xFF]))
    code = main(["--data-dir", str(protected.config.data_dir), "audit", "verify", "--quiet"])
    err = capsys.readouterr().err
    assert code == 6
    assert f"position {pos}" in err


def test_a_mid_log_flags_set_deleted_with_the_checkpoint_streams_is_named_not_position_1(
    protected: Node, person: Callable[[], str]
) -> None:
    """The insider removes the checkpoints too, hoping nothing is left to compare: the batches after them still
    signed the log, and the deleted FlagsSet is named (not the first event of the log)."""
    from tests.support.tamper import RawLog

    app = protected.app
    app.sign_checkpoint()
    rid = app.request_flags(Actor(B, "req"), app.subject(person()), ["NO_AUTO_RESPONSE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    app.sign_checkpoint()
    app.record_access(Actor(B, "aud"), person(), "address", "court order")
    raw = RawLog(protected)
    rows = raw.rows()
    flags = [r.position for r in rows if r.topic == "ledger.domain.flags:Protection.FlagsSet"]
    checkpoints = [r.position for r in rows if r.topic.startswith("ledger.domain.checkpoints:CheckpointLog.")]
    raw.delete([flags[-1], *checkpoints])
    raw.forge_head()
    report = verify_log(protected.app)
    assert report.first_bad is not None and report.first_bad.position == min(flags[-1], *checkpoints) > 1
    assert report.first_bad.code == "missing"


def test_a_state_cell_holding_text_is_named(make_node: Callable[..., Node]) -> None:
    """SQLite stores whatever it is given: a state rewritten as text (not UTF-8) used to stop the audit with a
    storage error naming no event."""
    import sqlite3
    from uuid import UUID

    node = make_node(AGENCIES)
    pos, stream, *_ = store.rows(node)[-1]
    with sqlite3.connect(node.config.data_dir / "ledger.sqlite") as conn:
        conn.execute("UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = ?", (pos,))
    report = verify_log(node.app)
    assert report.first_bad is not None and report.first_bad.position == pos and report.first_bad.code == "malformed"
    node.app.signed_store.forget()
    node.app.repository.get(UUID(stream))  # the aggregate still loads: the cell is read as the bytes it holds


def test_a_corrupted_key_row_is_named_by_audit_verify_and_stops_everything_else(
    make_node: Callable[..., Node], backend: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.cli.main import main

    node = make_node(AGENCIES, database_url=backend)
    pos, *_, state = next(r for r in store.rows(node) if r[3].endswith("KeyRegistry.KeyAdded"))
    store.set_state(node, pos, state[:-1] + bytes([state[-1] ^ 1]))
    data_dir = str(node.config.data_dir)
    assert main(["--data-dir", data_dir, "audit", "verify", "--quiet"]) == 6
    assert f"first bad event at position {pos} (ledger.domain.keys:KeyRegistry.KeyAdded" in capsys.readouterr().err
    assert main(["--data-dir", data_dir, "staff", "enroll", "--as", f"{B}/admin", "sato", "--role", "requester"]) == 6
    assert f"the key event at position {pos}" in capsys.readouterr().err
