"""A fresh start with envelope v2: a log written in v1 (before its batches signed the log head) is still checked
by `audit verify` — its signatures and chains — but nothing else reads it or writes to it; a peer's v1 envelope
is parked; an event of this node in v1 after v2 ones is named.

Threats: **a peer agency** (or **the broker operator**) sending the old format, whose signatures commit to no
log head, to slip events past the new checks; **an insider** writing an old-format event into a v2 log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from consumers.ingest import ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.domain.identity import AccessRecord
from ledger.errors import IntegrityError
from ledger.log.envelope import GENESIS, Envelope, seal_batch
from ledger.log.header import Header
from ledger.runtime.bootstrap import AgencySpec, Node, open_node
from tests.conftest import B
from tests.support.tamper import RawLog
from tests.support.trust import agency_pair

AGENCIES = (AgencySpec(B, "B市", "municipality"),)


def _v1(env: Envelope, prev: str) -> Header:
    return env.header._replace(prev=prev, v=1)


def rewrite_as_v1(node: Node) -> None:
    """Every row re-sealed in envelope v1 with the node's own key, chains re-linked, no log head row: the log
    as flagledger wrote it before v2."""
    raw, mapper = RawLog(node), node.app.signed_mapper
    heads: dict[str, str] = {}
    groups: list[list[tuple[int, Envelope]]] = []
    for r in raw.rows():
        env = mapper.open(r.state)
        if groups and groups[-1][0][1].seal.signature == env.seal.signature:
            groups[-1].append((r.position, env))
        else:
            groups.append([(r.position, env)])
    for group in groups:
        headers = []
        for _, env in group:
            h = _v1(env, heads.get(env.header.stream, GENESIS) if env.header.version > 1 else GENESIS).to_bytes()
            heads[env.header.stream] = Envelope(h, b"", env.seal).leaf_hash.hex()
            headers.append(h)
        signer = node.app.signers[group[0][1].header.origin]
        sealed = seal_batch(headers, [e.payload for _, e in group], signer.key_id, signer.sign, -1)
        for (position, _), env in zip(group, sealed, strict=True):
            raw.set_state(position, mapper.protect(env.to_bytes()))
    raw.drop_head()


@pytest.fixture
def v1_log(make_node: Callable[..., Node], person: Callable[[], str]) -> Node:
    node = make_node(AGENCIES)
    rid = node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    node.close()
    rewrite_as_v1(node)
    return node


def test_a_v1_log_is_audited_but_nothing_else_opens_it(v1_log: Node, capsys: pytest.CaptureFixture[str]) -> None:
    from ledger.cli.main import main

    data_dir = str(v1_log.config.data_dir)
    assert main(["--data-dir", data_dir, "audit", "verify", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["v1_events"] == out["events"] == out["log_size"] > 10
    audited = open_node(v1_log.config.data_dir, audit=True)
    try:
        assert verify_log(audited.app, workers=2, min_events=0).v1_events == out["events"]  # worker processes too
    finally:
        audited.close()
    with pytest.raises(IntegrityError) as err:
        open_node(v1_log.config.data_dir)
    assert err.value.code == "old_envelope" and "audit verify" in str(err.value)
    assert main(["--data-dir", data_dir, "staff", "enroll", "--as", f"{B}/admin", "sato", "--role", "requester"]) == 6
    assert "old_envelope" in capsys.readouterr().err


def test_a_v1_log_still_names_a_deleted_event_by_its_stream(v1_log: Node) -> None:
    raw = RawLog(v1_log)
    rows = [r for r in raw.rows() if r.topic.startswith("ledger.domain.flags:FlagRequest.")]
    raw.delete([rows[1].position])
    audited = open_node(v1_log.config.data_dir, audit=True)
    try:
        bad = verify_log(audited.app).first_bad
    finally:
        audited.close()
    assert bad is not None and bad.position == rows[1].position and bad.code == "missing"


def test_a_peer_s_event_in_envelope_v1_is_parked(make_node: Callable[..., Node], tmp_path: Path, person) -> None:
    a, b = agency_pair(make_node, tmp_path)
    rid = b.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    *_, (_, _, last) = publishable(b.app)
    env = Envelope.from_bytes(last)
    signer = b.app.signers[B]
    (old,) = seal_batch([_v1(env, env.header.prev).to_bytes()], [env.payload], signer.key_id, signer.sign, -1)
    before = a.app.max_position()
    outcome = ingest(a.app, old.to_bytes())
    assert outcome.kind == "parked" and outcome.code == "old_envelope"
    assert a.app.max_position() == before


def test_an_event_of_this_node_in_v1_after_v2_ones_is_named(make_node: Callable[..., Node]) -> None:
    node = make_node(AGENCIES)
    record = AccessRecord(agency=B, staff="aud", subject="p" + "0" * 32, what="address", purpose="x")
    batch = node.app.signed_mapper.prepare(list(record.collect_events()), B, {})
    assert batch is not None
    signer = node.app.signers[B]
    header = Header.from_bytes(batch.headers[0])._replace(v=1).to_bytes()
    (env,) = seal_batch([header], batch.payloads, signer.key_id, signer.sign, -1)
    raw = RawLog(node)
    position = raw.insert(
        UUID(str(record.id)).hex if not node.config.database_url else str(record.id),
        1,
        batch.rows[0][2],
        node.app.signed_mapper.protect(env.to_bytes()),
    )
    raw.forge_head()
    assert verify_log(node.app).first_bad.code == "old_envelope"  # type: ignore[union-attr]  # (not an audit)
    audited = open_node(node.config.data_dir, audit=True)
    try:
        bad = verify_log(audited.app).first_bad
    finally:
        audited.close()
    assert bad is not None and bad.position == position and bad.code == "downgraded"
