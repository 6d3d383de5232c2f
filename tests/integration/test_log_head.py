"""The log head row (size, root, frontier) moves with every insert — local saves and ingested events alike — and
a row that is missing or does not agree with itself stops writes and is named by `audit verify`. The node signs
tree heads on its own every N events or T seconds.

Threats: **an insider** deleting or editing the head row so the next batch signs a log without the events they
removed; a node that never publishes a head, leaving its tail unprotected (**the administrator** cutting it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.app.checkpoints import CHECKPOINT_TOPIC, Checkpointer, CheckpointSettings
from ledger.audit.verify import verify_log
from ledger.domain.identity import AccessRecord
from ledger.errors import ConfigurationError, IntegrityError
from ledger.merkle import CompactRange
from ledger.runtime.bootstrap import AgencySpec, Node
from ledger.runtime.config import NodeConfig
from tests.conftest import B
from tests.support import store
from tests.support.tamper import RawLog
from tests.support.trust import agency_pair

AGENCIES = (AgencySpec(B, "B市", "municipality"),)
AUD = Actor(B, "aud")


def _head_matches_rows(node: Node) -> None:
    head = node.app.recorder.read_head()  # type: ignore[attr-defined]
    tree = CompactRange(node.app.signed_mapper.open(r[4]).leaf_hash for r in store.rows(node))
    assert head is not None and (head.size, head.root) == (tree.size, tree.root())


def test_ingested_events_advance_the_head_as_local_ones_do(
    make_node: Callable[..., Node], tmp_path: Path, person: Callable[[], str]
) -> None:
    a, b = agency_pair(make_node, tmp_path)
    rid = b.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    pending = PendingStore(a.app, a.engine)
    assert {ingest(a.app, raw, pending).kind for _, _, raw in publishable(b.app)} == {"applied"}
    _head_matches_rows(a)
    a.app.record_access(Actor(a.app.signers and sorted(a.app.hosted)[0], "aud"), person(), "address", "x")
    _head_matches_rows(a)
    assert verify_log(a.app).ok


@pytest.mark.parametrize("damage", ["deleted", "edited"])
def test_a_missing_or_edited_head_row_stops_writes_and_is_named(
    make_node: Callable[..., Node], backend: str | None, person: Callable[[], str], damage: str
) -> None:
    node = make_node(AGENCIES, database_url=backend)
    raw = RawLog(node)
    if damage == "deleted":
        raw.drop_head()
    else:
        store.execute(
            node,
            # 2n+1 always has one more perfect subtree than n, so the row no longer agrees with itself. (size + 1
            # did only for some n: from n = ...01 to ...10 the frontier has as many hashes and the same root —
            # the issue 18 cast has such an n; such an edit is left to `audit verify`, see the issue 18 report)
            "UPDATE stored_events_head SET size = size * 2 + 1",
            "UPDATE flagledger_events_head SET size = size * 2 + 1",
            (),
        )
    before = node.app.max_position()
    with pytest.raises(IntegrityError) as err:
        node.app.record_access(AUD, person(), "address", "court order")
    assert err.value.code == f"head_{'missing' if damage == 'deleted' else 'corrupt'}"
    assert node.app.max_position() == before  # nothing was recorded
    bad = verify_log(node.app).first_bad
    assert bad is not None and bad.code == err.value.code and bad.position == before + 1


def test_the_node_signs_a_tree_head_every_n_events_or_t_seconds(
    make_node: Callable[..., Node], person: Callable[[], str]
) -> None:
    node = make_node(AGENCIES)
    signer = Checkpointer(node.app)
    every = CheckpointSettings(every_events=5, every_seconds=60)
    assert len(signer.sign_due(every, now=0.0)) == 1  # at start: nothing covers the log yet

    def signed() -> int:
        return sum(1 for r in store.rows(node) if r[3] == CHECKPOINT_TOPIC)

    def one_event() -> None:
        node.app.save_as(
            B, AccessRecord(agency=B, staff="aud", subject=node.app.subject(person()), what="a", purpose="x")
        )

    for _ in range(4):
        one_event()
    assert signer.sign_due(every, now=1.0) == [] and signed() == 1  # 4 new events, 1 s: not yet
    one_event()
    assert len(signer.sign_due(every, now=2.0)) == 1 and signed() == 2  # the 5th event
    one_event()
    assert signer.sign_due(every, now=61.0) == []  # 59 s after the last head
    assert len(signer.sign_due(every, now=62.5)) == 1 and signed() == 3  # 60 s: something new, so a head
    assert signer.sign_due(every, now=500.0) == []  # nothing new since: an idle node signs nothing
    assert verify_log(node.app).ok


def test_tree_head_settings_come_from_config_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = NodeConfig(data_dir=tmp_path)
    assert CheckpointSettings.from_config(config) == CheckpointSettings(every_events=1000, every_seconds=60.0)
    config.checkpoints = {"every_events": 50}
    monkeypatch.setenv("FLAGLEDGER_CHECKPOINT_EVERY_SECONDS", "7.5")
    assert CheckpointSettings.from_config(config) == CheckpointSettings(every_events=50, every_seconds=7.5)
    for bad in ({"every_events": "many"}, {"every_events": -1}, {"often": 1}):
        config.checkpoints = bad
        with pytest.raises(ConfigurationError) as err:
            CheckpointSettings.from_config(config)
        assert "many" not in str(err.value)  # the field is named, the value not echoed


def test_a_head_signed_for_another_node_s_log_is_refused_as_the_head_to_compare(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    """A head describes its signer's own log: B's log is not A's, so checking A's log against it is refused."""
    from ledger.app.checkpoints import latest_checkpoint
    from ledger.errors import InputError

    a, b = agency_pair(make_node, tmp_path)
    a.app.sign_checkpoint()
    with pytest.raises(InputError) as err:
        verify_log(b.app, trusted=[latest_checkpoint(a.app)])
    assert "does not host" in str(err.value)
    assert verify_log(a.app, trusted=[latest_checkpoint(a.app)]).ok
