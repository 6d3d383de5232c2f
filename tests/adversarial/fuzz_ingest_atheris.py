"""Coverage-guided fuzzing of the consumer handler with atheris (optional: ``pip install -e ".[fuzz]"``).

    .venv/bin/python -m tests.adversarial.fuzz_ingest_atheris -atheris_runs=20000

Two nodes (A, B) trusting each other; the corpus is seeded with B's valid published messages. Every input is
ingested at A's node: ingest must not raise, must answer ``parked`` with a reason and a code unless the input
is byte-for-byte one of the valid messages, and a parked input must change nothing. A finding aborts with
the input saved by libFuzzer (crash-*), to be replayed with the same command plus the file name.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from consumers.ingest import PendingStore, ingest

from consumers.outbox import publishable
from ledger.app import Actor
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.adversarial.threat import NAR, ND, A, B, prepare_node
from tests.support.people import individual_number
from tests.support.trust import trust_everyone


def build(root: Path) -> tuple[Node, Node, list[bytes]]:
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = init_node(root / "a", (AgencySpec(A, "A市", "municipality"),), pseudonym_key_file=key)
    b = init_node(root / "b", (AgencySpec(B, "B市", "municipality"),), pseudonym_key_file=key)
    for n in (a, b):
        prepare_node(n)
    trust_everyone([a, b])
    x = individual_number()
    rid = b.app.request_flags(Actor(B, "req"), x, [NAR, ND])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.approve_request(Actor(B, "apr2"), rid)
    b.app.execute_request(Actor(B, "op"), rid)
    b.app.receive_query(A, B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    return a, b, [raw for _, _, raw in publishable(b.app)]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="flagledger-atheris-"))
    a, _, valid = build(root)
    corpus = root / "corpus"
    corpus.mkdir()
    for i, raw in enumerate(valid):
        (corpus / f"valid-{i}").write_bytes(raw)
    known = set(valid)
    pending = PendingStore(a.app, a.engine)

    def one_input(data: bytes) -> None:
        before = (a.app.max_position(), tuple(pending.waiting()))
        outcome = ingest(a.app, data, pending)
        if data in known:
            return
        if outcome.kind != "parked" or not outcome.reason or not outcome.code:
            raise AssertionError(f"invalid input not parked with a reason: {outcome}")
        if (a.app.max_position(), tuple(pending.waiting())) != before:
            raise AssertionError(f"a parked input changed A's node: {outcome}")

    atheris.Setup([*sys.argv, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
