"""An insider with write access to the database deletes, truncates and reorders a log made under default settings
— several agencies' events, events ingested from a peer, checkpoints — and then rewrites the log head row to
match, as anyone can without a key. `audit verify` catches every one of 200 random attacks and names the first
bad position: exactly where a row is gone (the hole it left in the positions, or right after a cut tail), and
for rows swapped in place no earlier than the last event this node's signed batches vouch for. A cut tail is
caught against a tree head kept elsewhere: one exported with `audit head`, or the copy of a checkpoint a peer
holds.

Threats: **an insider** with the node's database (deleting a protection's FlagsSet lifts it; deleting access
records or token grants hides who looked) and **the administrator** covering their tracks.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.app.checkpoints import Checkpoint, latest_checkpoint, sign_head
from ledger.audit.verify import verify_log
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node, open_node
from tests.conftest import A, B, C
from tests.support.people import individual_number
from tests.support.tamper import RawLog, Row
from tests.support.trust import trust

CHECKPOINTS = "ledger.domain.checkpoints:CheckpointLog."
FLAGS_SET = "ledger.domain.flags:Protection.FlagsSet"


def _ship(src: Node, dst: Node, after: int) -> int:
    pending = PendingStore(dst.app, dst.engine)
    for position, _, raw in publishable(src.app, after):
        assert ingest(dst.app, raw, pending).kind == "applied"
        after = position
    return after


def _protect(node: Node, agency: str, x: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), x, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


@dataclass
class Log:
    node: Node  # x: hosts A and C
    peer: Node  # y: hosts B; holds x's checkpoints
    exported: Checkpoint  # `audit head`: over the whole log
    held_by_peer: Checkpoint  # the latest checkpoint of A that y holds


def _build(make_node: Callable[..., Node], backend: str | None, tmp_path: Path, rounds: int) -> Log:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    x = make_node(
        (AgencySpec(A, "A市", "municipality"), AgencySpec(C, "C市", "municipality")),
        name="x",
        pseudonym_key_file=key,
        database_url=backend,
    )
    y = make_node((AgencySpec(B, "B市", "municipality"),), name="y", pseudonym_key_file=key)
    trust(x, y)
    trust(y, x, A)
    trust(y, x, C)
    rng = random.Random(16)
    from_y = to_y = 0
    for r in range(rounds):
        people = [individual_number(rng) for _ in range(3)]
        _protect(x, A, people[0])
        _protect(y, B, people[1])
        x.app.record_access(Actor(A, "aud"), people[0], "address", "court order")  # a stream of one event
        x.app.request_provision(
            Actor(A, "counter"), A, people[1], legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        if r % 2:
            _protect(x, C, people[2])
        from_y = _ship(y, x, from_y)  # ingested events between x's own batches
        if r % 2 == 0:
            x.app.sign_checkpoint()  # the node's automatic tree heads
            to_y = _ship(x, y, to_y)
    x.app.sign_checkpoint()
    _ship(x, y, to_y)
    return Log(x, y, sign_head(x.app, A), latest_checkpoint(y.app, A))


@dataclass(frozen=True)
class Attack:
    kind: str
    first: int  # the first position changed, in the log before the attack
    exact: bool  # the first bad position is known exactly (else: no earlier than the last vouched event)
    altered: frozenset[int]  # positions whose row was removed or moved


def _attack(
    raw: RawLog, rows: list[Row], kind: str, rng: random.Random, peer_size: int, signature: dict[int, bytes]
) -> Attack:
    positions = [r.position for r in rows]
    streams: dict[str, list[Row]] = {}
    for r in rows:
        streams.setdefault(r.stream, []).append(r)
    if kind == "one":
        gone = [rng.choice(positions)]
    elif kind == "stream":
        gone = [r.position for r in rng.choice(list(streams.values()))]
    elif kind == "stream_last":
        gone = [rng.choice([s for s in streams.values() if len(s) > 1] or list(streams.values()))[-1].position]
    elif kind in ("tail", "tail_peer"):
        if kind == "tail":
            k = rng.choice([1, 2, 20, rng.randint(3, 40)])
        else:  # cut into what the peer's checkpoint covers
            k = len(rows) - rng.randint(max(1, peer_size - 20), peer_size - 1)
        gone = positions[-k:]
    elif kind == "range":
        start = rng.randrange(1, len(rows) - 12)
        gone = positions[start : start + rng.randint(2, 10)]
    elif kind == "batch":
        batches: dict[bytes, list[int]] = {}
        for r in rows:
            batches.setdefault(signature[r.position], []).append(r.position)
        gone = rng.choice(list(batches.values()))
    elif kind == "checkpoints_and_flags":
        cps = [r.position for r in rows if r.topic.startswith(CHECKPOINTS)]
        flags = [r.position for r in rows if r.topic == FLAGS_SET and cps[0] < r.position < cps[-1]]
        gone = [*cps, rng.choice(flags)]
    elif kind == "swap":
        p, q = sorted(rng.sample(positions, 2))
        raw.swap(p, q)
        return Attack(kind, p, False, frozenset({p, q}))
    elif kind == "to_end":
        p = rng.choice(positions[:-1])  # (the last one moved after itself keeps its place in the order)
        raw.move_to_end(p)
        return Attack(kind, p, True, frozenset({p}))
    elif kind == "restream":
        victim, other = rng.sample(list(streams.values()), 2)
        p = rng.choice(victim).position
        raw.restream(p, other[0].stream, other[-1].version + 1)
        return Attack(kind, p, True, frozenset({p}))
    else:
        raise AssertionError(kind)
    raw.delete(gone)
    return Attack(kind, min(gone), True, frozenset(gone))


KINDS = [
    "one",
    "stream",
    "stream_last",
    "tail",
    "tail_peer",
    "range",
    "batch",
    "checkpoints_and_flags",
    "swap",
    "to_end",
    "restream",
]


def _run(log: Log, trials: int, seed: int, tmp_path: Path) -> dict[str, int]:
    node = log.node
    raw = RawLog(node)
    raw.snapshot()
    rows = raw.rows()
    hosted = node.app.hosted
    envs: dict[int, Envelope] = {r.position: node.app.signed_mapper.open(r.state) for r in rows}
    signature = {p: e.seal.signature for p, e in envs.items()}
    own = {p for p, e in envs.items() if e.header.origin in hosted}
    batch_ends = sorted(p for p in own if envs[p].seal.leaf_index == envs[p].seal.size - 1)
    head_file = tmp_path / "head.json"
    head_file.write_text(json.dumps(log.exported.to_json()))
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    for trial in range(trials):
        kind = KINDS[trial % len(KINDS)] if trial < len(KINDS) else rng.choice(KINDS)
        attack = _attack(raw, rows, kind, rng, log.held_by_peer.tree_size, signature)
        raw.forge_head()  # the strongest keyless insider: the head row matches what is left
        # caught inside the log when an event of this node's batches still follows the first change
        inside = any(p > attack.first and p not in attack.altered for p in own)
        against = [log.held_by_peer] if kind == "tail_peer" else [] if inside and trial % 2 else [log.exported]
        audited = open_node(node.config.data_dir, audit=True)
        try:
            report = verify_log(audited.app, trusted=[Checkpoint.from_json(h.to_json()) for h in against], workers=1)
        finally:
            audited.close()
        bad = report.first_bad
        context = f"trial {trial}: {attack} against {len(against)} head(s): {bad}"
        assert bad is not None, f"undetected: {context}"
        if attack.exact:
            assert bad.position == attack.first, context
        else:
            lower = max((e for e in batch_ends if e < attack.first), default=0) + 1
            # a peer's event moved onto ``first`` may fit there (its own chain is intact, and the peer's signature
            # vouches for nothing about this log's order): then it is named at the latest where the next event of
            # this node's own batches vouches for the order again
            upper = min((p for p in own if p > attack.first and p not in attack.altered), default=attack.first)
            assert lower <= bad.position <= max(attack.first, upper), context
        if trial % 40 == 7 and kind != "tail_peer":  # and the command an auditor runs says the same
            from ledger.cli.main import main

            args = ["--data-dir", str(node.config.data_dir), "audit", "verify", "--quiet"]
            assert main(args + (["--against", str(head_file)] if against else [])) == 6, context
        seen[kind] = seen.get(kind, 0) + 1
        raw.restore()
    audited = open_node(node.config.data_dir, audit=True)
    try:
        assert verify_log(audited.app, trusted=[log.exported], workers=1).ok, "the restored log verifies again"
    finally:
        audited.close()
    return seen


def test_200_random_deletions_truncations_and_reorders_are_named(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    log = _build(make_node, None, tmp_path, rounds=6)
    assert verify_log(log.node.app, trusted=[log.exported, log.held_by_peer]).ok
    seen = _run(log, 200, seed=2026, tmp_path=tmp_path)
    assert set(seen) == set(KINDS)


@pytest.mark.postgres
def test_random_deletions_truncations_and_reorders_are_named_on_postgresql(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    from tests.support.postgres import temp_database

    with temp_database() as url:
        log = _build(make_node, url, tmp_path, rounds=4)
        assert verify_log(log.node.app, trusted=[log.exported, log.held_by_peer]).ok
        seen = _run(log, 33, seed=6962, tmp_path=tmp_path)
        assert set(seen) == set(KINDS)
