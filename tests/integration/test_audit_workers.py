"""`audit verify` split over worker processes reaches exactly the verdict of the one-process audit.

The log (encrypted at rest or not): 40 provision requests whose streams interleave across batches, read in
pages of 7 so that every worker gets many pages and a bad event usually sits in a page after others still
being checked. For the honest log and for each way an attacker with database access can damage it, both
audits must name the same first bad event (position, reason, code) and have counted the same events, streams
and batches before it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.audit.verify import VerifyReport, verify_log
from ledger.domain.provision import ProvisionRequest
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.support import store

AGENCIES = (AgencySpec(B, "B市", "municipality"),)
REQUESTS = 40
PAGE = 7


@pytest.fixture(params=[True, False], ids=["encrypted", "plain"])
def logged(request: pytest.FixtureRequest, make_node: Callable[..., Node], backend: str | None) -> Node:
    node = make_node(AGENCIES, database_url=backend, staff=False, encryption=request.param)
    reqs = [
        ProvisionRequest(
            agency=B,
            querier=A,
            subject=f"p{i:032x}",
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
            applicant="unknown",
        )
        for i in range(REQUESTS)
    ]
    for i in range(0, REQUESTS, 8):
        node.app.save_as(B, *reqs[i : i + 8])
    for r in reqs:
        r.hold(flags=["NO_AUTO_RESPONSE"])
    node.app.save_as(B, *reqs[::2])
    node.app.save_as(B, *reqs[1::2])
    for r in reqs[:20]:
        r.propose("provide", "unknown", "rev1", "")
        node.app.save_as(B, r)  # batches of one
    return node


def _both(node: Node, heads: int = 100_000) -> tuple[VerifyReport, VerifyReport]:
    alone = verify_log(node.app, workers=1, page=PAGE, heads_in_memory=heads)
    split = verify_log(node.app, workers=2, min_events=0, page=PAGE, heads_in_memory=heads)
    return alone, split


def _same(alone: VerifyReport, split: VerifyReport) -> None:
    assert split.first_bad == alone.first_bad
    assert (split.events, split.streams, split.batches, split.checkpoints) == (
        alone.events,
        alone.streams,
        alone.batches,
        alone.checkpoints,
    )


def _provision_rows(node: Node) -> list[tuple[int, str, int, str, bytes]]:
    return [r for r in store.rows(node) if r[3].startswith("ledger.domain.provision:ProvisionRequest.")]


def test_the_honest_log_gets_the_same_counts(logged: Node) -> None:
    alone, split = _both(logged)
    assert alone.ok and split.ok, (alone.first_bad, split.first_bad)
    assert alone.events == logged.app.max_position() and alone.batches > 20
    _same(alone, split)


def test_the_same_counts_with_stream_heads_spilled(logged: Node) -> None:
    alone, split = _both(logged, heads=3)
    assert split.ok and split.heads_spilled > 0
    _same(alone, split)


def _edit_payload(node: Node, row: tuple[int, str, int, str, bytes]) -> None:
    """``rev1`` → ``rev2`` in a proposal: its digest fails (stored plain) or its cipher tag (encrypted)."""
    state = row[4]
    edited = (
        state.replace(b"rev1", b"rev2") if b"rev1" in state else state[:-100] + bytes([state[-100] ^ 1]) + state[-99:]
    )
    store.set_state(node, row[0], edited)


def _proposals(node: Node) -> list[tuple[int, str, int, str, bytes]]:
    return [r for r in _provision_rows(node) if r[3].endswith(".DecisionProposed")]


def test_an_edited_payload_is_the_same_first_bad_event(logged: Node) -> None:
    victim = _proposals(logged)[12]
    _edit_payload(logged, victim)
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.position == victim[0]
    expected = "undecryptable" if logged.config.encryption else "bad_signature"
    assert alone.first_bad.code == expected, alone.first_bad
    _same(alone, split)


def test_a_deleted_event_is_the_same_missing_position(logged: Node) -> None:
    rows = _provision_rows(logged)
    proposed = {r[1] for r in rows if r[2] == 3}
    held = [r for r in rows if r[2] == 2 and r[1] in proposed][-1]  # late in the log, with a next event
    store.delete(logged, held[0])
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.code == "missing"
    assert alone.first_bad.position == held[0]
    _same(alone, split)


def test_a_row_moved_onto_another_is_the_same_finding(logged: Node) -> None:
    rows = _provision_rows(logged)
    store.set_state(logged, rows[70][0], rows[75][4])  # the row no longer matches its signed header
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.position == rows[70][0]
    _same(alone, split)


def test_a_truncated_envelope_is_the_same_finding(logged: Node) -> None:
    pos, _, _, _, state = _provision_rows(logged)[33]
    store.set_state(logged, pos, state[:-3])
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.position == pos
    _same(alone, split)


def test_the_earlier_of_a_deletion_and_a_bad_signature_is_named(logged: Node) -> None:
    """A worker finds the bad digest late in a page; the deletion earlier in the log must still win."""
    rows = _provision_rows(logged)
    held = next(r for r in rows if r[2] == 2)
    _edit_payload(logged, _proposals(logged)[-1])
    store.delete(logged, held[0])
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.position == held[0]
    _same(alone, split)


def test_an_edited_event_after_a_deleted_one_is_second(logged: Node) -> None:
    """One event both unlinked (its predecessor deleted) and edited: the deletion, earlier, is named, as alone."""
    rows = _provision_rows(logged)
    victim = _proposals(logged)[15]
    held = next(r for r in rows if r[1] == victim[1] and r[2] == 2)
    store.delete(logged, held[0])
    _edit_payload(logged, victim)
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.position == held[0], alone.first_bad
    assert alone.first_bad.code == "missing"
    _same(alone, split)


def test_a_truncated_tail_is_the_same_finding(logged: Node) -> None:
    """The last batches of one event (proposals) cut off, the head row left as it was: named alike."""
    cut = _proposals(logged)[-3:]
    for row in cut:
        store.delete(logged, row[0])
    alone, split = _both(logged)
    assert alone.first_bad is not None and alone.first_bad.code == "truncated"
    assert alone.first_bad.position == cut[0][0]
    _same(alone, split)


def test_cli_audit_verify_takes_workers(logged: Node, capsys: pytest.CaptureFixture[str]) -> None:
    from ledger.cli.main import main

    assert main(["--data-dir", str(logged.config.data_dir), "audit", "verify", "--quiet", "--workers", "2"]) == 0
    assert '"ok": true' in capsys.readouterr().out.replace("'", '"').lower()
    assert main(["--data-dir", str(logged.config.data_dir), "audit", "verify", "--workers", "0"]) != 0
    assert "--workers" in capsys.readouterr().err
