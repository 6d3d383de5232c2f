"""The views encrypted at rest, and what erasure does to them (issue 22, docs/erasure.md), on SQLite and PostgreSQL.

Threats: an insider with one agency's whole data directory and secrets — the views' files (or PostgreSQL's rows) hold
no one's intake notes, read purposes or probe details in plain text, and after a person's erasure no copy of their
sealed cells taken before it (a backup, a free page, a dead tuple) opens with any key left on the node; the
perpetrator — erasure never shows a provision record that the person's NON_DISCLOSURE hid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, text

from ledger.app import Actor
from ledger.audit.proofs import build_proof, check_proof
from ledger.audit.verify import verify_log
from ledger.log.subject_payload import ENC_DK1
from ledger.log.view_cipher import SEALED_PREFIX, ViewCipher
from ledger.runtime.bootstrap import Node, open_node
from ledger.runtime.erasure_scrub import scrub_after_erasure
from projections import views
from projections.base import metadata
from projections.queues import PROBE_PROCEDURE, PROBE_QUERIER, probe_queue
from projections.timeline import DETAIL, timeline_events
from tests.conftest import A, B

NAR, ND = "NO_AUTO_RESPONSE", "NON_DISCLOSURE"


def _protect(node: Node, subject: str) -> None:
    rid = node.app.request_flags(Actor(B, "req"), subject, [NAR, ND])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)


def _person(node: Node, number: str, tag: str) -> tuple[str, list[str], str]:
    """A protected person with an intake note, a read of their details and a held request: (pseudonym, their
    personal values, the held request's id)."""
    app = node.app
    note, purpose = f"{tag}-intake-note-moved-near-the-station", f"{tag}-read-purpose-yearly-check"
    app.open_case(Actor(B, "req"), number, notes=note)
    _protect(node, number)
    app._record_reads(Actor(B, "rev"), [app.subject(number)], "protected details", purpose)
    held = app.request_provision(
        Actor(A, "counter"), B, number, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert held.status == "in_progress"
    return app.subject(number), [note, purpose], held.request_id


def _scan_files(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.name}: {n}" for n in needles if n.encode() in data]
    return hits


def _scan_view_rows(node: Node, needles: list[str]) -> list[str]:
    hits = []
    with node.engine.connect() as conn:
        for table in metadata.sorted_tables:  # every view table
            for row in conn.execute(select(table)):
                cells = " ".join(str(v) for v in row)
                hits += [f"{table.name}: {n}" for n in needles if n in cells]
    return hits


def _cells(node: Node, subject: str) -> list[tuple[str, str]]:
    """(column, sealed cell) of every personal cell the views hold about ``subject``."""
    with node.engine.connect() as conn:
        details = conn.execute(select(timeline_events.c.detail).where(timeline_events.c.subject == subject))
        out = [(DETAIL, str(d)) for d in details.scalars()]
        rid = text("SELECT request_id FROM queue_request_subjects WHERE subject = :s")
        requests = [str(r) for r in conn.execute(rid, {"s": subject}).scalars()]
        probes = conn.execute(
            select(probe_queue.c.querier, probe_queue.c.procedure).where(probe_queue.c.request_id.in_(requests))
        )
        for querier, procedure in probes:
            out += [(PROBE_QUERIER, str(querier)), (PROBE_PROCEDURE, str(procedure))]
    return out


def test_views_are_sealed_and_an_erased_persons_old_cells_open_with_no_key_left(
    make_node: Callable[..., Node], backend: str | None, person: Callable[[], str]
) -> None:
    """Threat: an insider with the agency's whole data directory and secrets (after the erasure), and the
    perpetrator (a hidden record stays hidden). Views hold no personal plaintext of anyone; the erased person's
    cells copied before the erasure open with no key the node still holds, everyone else's still do; the log,
    its proofs and the rebuild equal to the live views hold."""
    node = make_node(database_url=backend)
    target, target_values, target_request = _person(node, person(), "TARGET")
    others = [_person(node, person(), f"OTHER{i}") for i in range(3)]
    node.projector.catch_up()
    everyone = target_values + [v for _, values, _ in others for v in values]

    # no one's personal values in the views, in the view files or (PostgreSQL) the view tables' rows
    assert _scan_view_rows(node, everyone) == []
    if backend is None:
        assert _scan_files(node.config.data_dir, everyone) == []
    # the probe notice still reads right for the holder's reviewer, from sealed cells
    probes = {p.request_id: p for p in views.work_queue(node, Actor(B, "rev")).probes}
    assert (probes[target_request].querier, probes[target_request].procedure) == (A, "児童手当")
    before = _cells(node, target)
    assert len(before) >= 4 and all(c.startswith(SEALED_PREFIX) for _, c in before)
    kept = {s: _cells(node, s) for s, _, _ in others}
    cipher = ViewCipher(node.app.signed_mapper.data_keys)
    assert all(cipher.open(col, c) is not None for col, c in before)  # the opening below can fail
    assert views.portal_records(node, target, target).records == ()  # hidden by NON_DISCLOSURE
    plain = node.app.subject(unprotected := person())  # the control: an unflagged person's record is shown
    node.app.request_provision(
        Actor(A, "counter"), B, unprotected, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert [r.procedure for r in views.portal_records(node, plain, plain).records] == ["児童手当"]

    # the perfect guess an insider could make of each of the person's erased payloads: the payload itself
    mapper = node.app.signed_mapper
    guesses = [mapper.plaintext(env) for _, _, env in node.app.envelopes() if env.header.enc == ENC_DK1]
    assert guesses and any(b"TARGET-intake-note" in g for g in guesses)
    unsalted = [(env.payload, env.header.digest) for _, _, env in node.app.envelopes() if env.header.enc != ENC_DK1]
    assert all(hashlib.sha256(p).hexdigest() == d for p, d in unsalted)  # a guess would confirm an unsalted one

    request = node.app.request_erasure(Actor(B, "admin"), target, "retention of the case ended")
    node.app.approve_erasure(Actor(B, "admin2"), request, note="checked")
    scrub_after_erasure(node)

    # every key that remains, in a node opened afresh from the directory (as an insider would): the old cells
    # of the erased person do not open; everyone else's, and their timeline, do
    config = node.config
    node.close()
    again = open_node(config.data_dir)
    try:
        fresh = ViewCipher(again.app.signed_mapper.data_keys)
        assert [fresh.open(col, c) for col, c in before] == [None] * len(before)
        for subject, values, _ in others:
            assert all(fresh.open(col, c) is not None for col, c in kept[subject])
            with again.engine.connect() as conn:
                shown = " ".join(str(e.detail) for e in views.timeline_rows(conn, fresh, [subject]))
            assert all(v in shown for v in values)
        assert _scan_view_rows(again, target_values) == []
        if backend is None:
            assert _scan_files(config.data_dir, everyone) == []
        # salted digests: no header digest, leaf or file of the node confirms a guessed erased payload
        gone = [g for g in guesses if b"TARGET" in g]
        headers = [env.header_bytes for _, _, env in again.app.envelopes()]
        leaves = {env.leaf_hash for _, _, env in again.app.envelopes()}
        assert {_leaf_with(h, json.loads(h)["digest"]) for h in headers} == leaves  # (the leaf is rebuilt right)
        for guess in gone:
            digest = hashlib.sha256(guess).hexdigest()
            assert not any(digest.encode() in h for h in headers)
            assert _scan_files(config.data_dir, [digest]) == []
            assert all(_leaf_with(h, digest) not in leaves for h in headers)
        # erasure un-hides nothing: the record NON_DISCLOSURE hid stays hidden (the flags are shared events)
        assert views.portal_records(again, target, target).records == ()
        assert len(views.portal_records(again, plain, plain).records) == 1
        report = verify_log(again.app, workers=1)
        assert report.ok, report.first_bad
        # every erased event is still proved included in a checkpoint signed after the erasure
        again.app.sign_checkpoint(B, force=True)
        erased = [pos for pos, _, env in again.app.envelopes() if env.header.enc == ENC_DK1]
        assert erased
        key = again.app.signers[B].public_raw.hex()
        for pos in erased:
            assert check_proof(build_proof(again.app, position=pos, agency=B), key)["ok"]
        # the views after erasure equal a rebuild of them, cell for cell
        live = _dump(again)
        again.projector.rebuild()
        assert _dump(again) == live
    finally:
        again.close()


def _dump(node: Node) -> list[tuple[object, ...]]:
    with node.engine.connect() as conn:
        rows = [tuple(r) for t in (timeline_events, probe_queue) for r in conn.execute(select(t))]
    return sorted(rows, key=repr)


def _leaf_with(header: bytes, digest: str) -> bytes:
    """The Merkle leaf ``header`` would have if its digest were ``digest`` (the guess's)."""
    head = json.loads(header)
    head["digest"] = digest
    return hashlib.sha256(b"\x00" + json.dumps(head, separators=(",", ":"), sort_keys=True).encode()).digest()
