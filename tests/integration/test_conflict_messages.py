"""Races and repeats answer plainly: a lost race says someone else changed it (the driver's words stay in the
log), a second approval by the same person is a 409 conflict (CLI exit 5), executing an executed request says
it was executed, and threads racing for one request inside one server apply it once, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from ledger.app import CONCURRENT_CHANGE, Actor
from ledger.errors import FlagLedgerError, StateConflict
from ledger.runtime.bootstrap import Node, open_node
from tests.conftest import B
from tests.e2e.test_demo import run_cli
from tests.support.api import auth, client

ND = "NON_DISCLOSURE"
DRIVER_WORDS = ("unique constraint", "stored_events", "detail", "duplicate key", "integrityerror", "psycopg", "sqlite")


def _approved(node: Node, subject: str) -> UUID:
    rid = node.app.request_flags(Actor(B, "req"), subject, [ND])
    node.app.approve_request(Actor(B, "apr"), rid)
    return rid


def _events(node: Node, suffix: str, stream: UUID) -> int:
    return sum(
        1
        for _, row, env in node.app.envelopes()
        if env.header.topic.endswith(suffix) and env.header.stream == str(stream)
    )


def test_a_write_that_lost_the_race_says_someone_else_changed_it(
    node: Node, person: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    """Defends the shell user and the administrator at the screen: a refused save names no table, constraint or
    key (the driver's text is for the operator's log) and records nothing."""
    rid = node.app.request_flags(Actor(B, "req"), person(), [ND])
    stale = node.app.flag_request(rid)  # this process read the request ...
    other = open_node(Path(node.config.data_dir))  # ... and another process approved it meanwhile
    try:
        other.app.approve_request(Actor(B, "apr"), rid)
    finally:
        other.close()
    stale.approve("apr2")
    before = node.app.max_position()
    with caplog.at_level(logging.INFO, logger="flagledger.ledger"), pytest.raises(StateConflict) as refused:
        node.app.save_as(B, stale)
    assert str(refused.value) == CONCURRENT_CHANGE and refused.value.code == "concurrent_change"
    assert not any(w in str(refused.value).lower() for w in DRIVER_WORDS)
    assert any(w in caplog.text.lower() for w in ("unique", "duplicate key")), "the operator's log has the cause"
    assert node.app.max_position() == before, "nothing of the lost write was recorded"


def test_threads_racing_for_one_request_apply_it_once(node: Node, person: Callable[[], str]) -> None:
    """Defends the four-eyes record (the administrator): eight API threads that all read the same approved
    request before any of them executes it execute it once; the others get a conflict, never an integrity
    error (a thread's stream head must not be taken for a broken chain) or a storage error."""
    rid = _approved(node, person())
    read_all = threading.Barrier(8)
    outcomes: list[str] = []

    def execute() -> None:
        request = node.app.flag_request(rid)  # every thread reads v2 (and notes the stream's head) ...
        read_all.wait()  # ... before any of them saves
        try:
            request.execute("op")
            node.app.save_as(B, request)
            outcomes.append("executed")
        except StateConflict:
            outcomes.append("conflict")
        except FlagLedgerError as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=execute) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 7 + ["executed"], outcomes
    assert _events(node, "FlagRequest.Executed", rid) == 1
    assert node.app.flag_request(rid).status == "executed"


def test_two_requests_interleaved_on_one_node_conflict_instead_of_breaking_the_chain(
    node: Node, person: Callable[[], str]
) -> None:
    """Defends the record's integrity alarms from false alarms (the administrator and the auditor): request A
    reads a request, request B executes it, then A tries; A gets a plain conflict, not "broken chain" (which
    would read as tampering and answer 503), and the stream keeps one execution."""
    rid = _approved(node, person())
    first, second = node.app.flag_request(rid), node.app.flag_request(rid)
    second.execute("op")
    node.app.save_as(B, second)
    first.execute("op")
    with pytest.raises(StateConflict) as refused:
        node.app.save_as(B, first)
    assert str(refused.value) == CONCURRENT_CHANGE
    assert _events(node, "FlagRequest.Executed", rid) == 1


def test_a_slow_reader_never_moves_a_stream_head_back(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Defends the same against a reader thread that read v2, finishing after a writer saved v3: the head it
    reports afterwards does not replace the newer one (the next save would otherwise be refused)."""
    node = sqlite_node
    rid = _approved(node, person())
    store = node.app.signed_store
    old = store.head(rid)
    assert old is not None and old[0] == 2
    node.app.execute_request(Actor(B, "op"), rid)
    newer = store.head(rid)
    assert newer is not None and newer[0] == 3
    store.remember(rid, old)  # the slow reader's report
    assert store.head(rid) == newer
    assert store.stored_head(rid) == newer


def test_a_second_approval_by_the_same_approver_is_a_409_conflict(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Defends four eyes (the administrator): the same person approving twice is refused as a conflict with
    the state, as docs/api.md promises (409), and adds nothing."""
    node = sqlite_node
    node.app.set_approval_policy(Actor(B, "admin"), 2)
    rid = node.app.request_flags(Actor(B, "req"), person(), [ND])
    http = client(node)
    h = auth(node, B, "apr")
    first = http.post(f"/api/v1/flag-requests/{rid}/approve", json={}, headers=h)
    assert first.status_code == 200 and first.json()["status"] == "pending"
    again = http.post(f"/api/v1/flag-requests/{rid}/approve", json={}, headers=h)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "conflict" and "already approved" in again.json()["message"]
    assert _events(node, "FlagRequest.Approved", rid) == 1


def test_the_command_line_answers_the_same_with_exit_5(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Defends the shell user's view of four eyes: a second approval by the same approver and an execution of an
    executed request exit 5 (rule refused) with a plain sentence, no traceback."""
    node = sqlite_node
    node.app.set_approval_policy(Actor(B, "admin"), 2)
    rid = node.app.request_flags(Actor(B, "req"), person(), [ND])
    data = str(node.config.data_dir)
    assert run_cli("flag", "approve", "--data-dir", data, "--as", f"{B}/apr", str(rid)).returncode == 0
    again = run_cli("flag", "approve", "--data-dir", data, "--as", f"{B}/apr", str(rid))
    assert again.returncode == 5 and "already approved" in again.stderr and "Traceback" not in again.stderr
    assert run_cli("flag", "approve", "--data-dir", data, "--as", f"{B}/apr2", str(rid)).returncode == 0
    assert run_cli("flag", "execute", "--data-dir", data, "--as", f"{B}/op", str(rid)).returncode == 0
    twice = run_cli("flag", "execute", "--data-dir", data, "--as", f"{B}/op", str(rid))
    assert twice.returncode == 5 and "already executed" in twice.stderr, twice.stderr
    assert "approval(s)" not in twice.stderr, "an executed request needs no more approvals"


def test_executing_an_executed_request_says_it_was_executed(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Defends the operator from a misleading answer (the administrator's record): the API says the request was
    already executed instead of asking for approvals it has."""
    node = sqlite_node
    rid = _approved(node, person())
    http, h = client(node), auth(node, B, "op")
    assert http.post(f"/api/v1/flag-requests/{rid}/execute", headers=h).status_code == 200
    again = http.post(f"/api/v1/flag-requests/{rid}/execute", headers=h)
    assert again.status_code == 409 and "already executed" in again.json()["message"], again.text
    pending = node.app.request_flags(Actor(B, "req"), person(), [ND])
    early = http.post(f"/api/v1/flag-requests/{pending}/execute", headers=h)
    assert early.status_code == 409 and "needs 1 approval(s)" in early.json()["message"], early.text
