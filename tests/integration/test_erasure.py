"""Erasure of one person among many (issue 22, docs/erasure.md), on SQLite and PostgreSQL.

Threats: an insider who copies the data directory after the person's retention ended (with every key that
remains on the node) must find none of their content; an administrator alone cannot erase (four eyes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.domain.cases import ProtectionCase
from ledger.errors import SelfApprovalError
from ledger.log.subject_payload import ENC_DK1, ErasedPayload
from ledger.runtime.bootstrap import Node
from ledger.runtime.erasure_scrub import scrub_after_erasure
from projections.timeline import DETAIL, timeline_events
from tests.conftest import A

TARGET_NOTE = "TARGET-intake-note-she-fled-to-the-coast-7731"
TARGET_PURPOSE = "TARGET-read-purpose-yearly-check-4419"


def _open_cases(node: Node, person: Callable[[], str]) -> tuple[str, list[tuple[str, str]]]:
    app = node.app
    others = []
    for i in range(4):
        number = person()
        note = f"OTHER-intake-note-{i}-keep-me"
        app.open_case(Actor(A, "req"), number, notes=note)
        others.append((app.subject(number), note))
    target = app.subject(person())
    case = app.open_case(Actor(A, "req"), target, notes=TARGET_NOTE)
    app._record_reads(Actor(A, "rev"), [target], "protected details", TARGET_PURPOSE)
    loaded = app.load(ProtectionCase, case, "case")
    loaded.close(by="req", note="TARGET-closing-note")
    app.save_as(A, loaded)
    node.projector.catch_up()
    return target, others


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {n.decode()}" for n in needles if n in data]
    return found


def _readable_payloads(node: Node) -> list[bytes]:
    """Every stored event as this node can still read it, with every key it still holds."""
    mapper = node.app.signed_mapper
    out = []
    for _, _, env in node.app.envelopes():
        out.append(env.to_bytes())
        with contextlib.suppress(ErasedPayload):
            out.append(mapper.plaintext(env))
    return out


def _postgres_rows(url: str) -> list[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = []
            for table in inspect(conn).get_table_names():
                rows += [str(r[0]) for r in conn.execute(text(f'SELECT t::text FROM "{table}" t'))]
            return rows
    finally:
        engine.dispose()


def _postgres_files_holding(url: str, needles: list[bytes]) -> list[str]:
    """The database's own files on the server (this machine's cluster, readable by the test's account), after a
    checkpoint: the node's tables there; the WAL, its archive and base backups: test_erasure_pg_files.py."""
    import psycopg

    from tests.support.postgres import ADMIN_DSN

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        home = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        name = url.rsplit("/", 1)[1]
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]  # type: ignore[index]
    base = home / "base" / str(oid)
    if not base.is_dir():
        pytest.skip(f"the cluster's files are not readable here ({base})")
    return _files_holding(base, needles)


def test_erasing_one_person_leaves_none_of_their_content_and_the_log_still_verifies(
    make_node: Callable[..., Node], backend: str | None, person: Callable[[], str]
) -> None:
    """Insider with the data directory after retention ended: no file of the node, and no event readable with
    any key left, holds the erased person's notes; everyone else's stay; `audit verify` passes and names the
    erasure. Administrator: the requester cannot approve their own erasure."""
    url = backend
    node = make_node(database_url=url)
    app = node.app
    target, others = _open_cases(node, person)
    needles = [TARGET_NOTE.encode(), TARGET_PURPOSE.encode(), b"TARGET-closing-note"]
    # the views keep no plaintext (sealed under the data key, tests/integration/test_erasure_views.py); the
    # scan sees their sealed cells, so it would see a leftover: those of the erased person go too
    with node.engine.connect() as conn:
        sealed = conn.execute(select(timeline_events.c.detail).where(timeline_events.c.subject == target))
        cells = [str(c).encode() for c in sealed.scalars()]
    assert cells and _files_holding(node.config.data_dir, [TARGET_NOTE.encode()]) == []
    if url is None:
        assert _files_holding(node.config.data_dir, cells[:1])
    needles += cells
    # the person's events are stored under their data key: the signed digest is of the ciphertext
    encs = {env.header.topic.rpartition(":")[2]: env.header.enc for _, _, env in app.envelopes()}
    assert encs["ProtectionCase.Opened"] == ENC_DK1
    assert encs["AccessRecord.ProtectedDetailsRead"] == ENC_DK1

    if url is not None:
        assert _postgres_files_holding(url, needles), "scan is blind"
    request = app.request_erasure(Actor(A, "admin"), target, "retention of the case ended")
    with pytest.raises(SelfApprovalError):
        app.approve_erasure(Actor(A, "admin"), request)
    out = app.approve_erasure(Actor(A, "admin2"), request, note="checked the retention schedule")
    assert out["destroyed"] == 1 and len(out["key_refs"]) == 1  # type: ignore[arg-type]
    scrub_after_erasure(node)

    assert _files_holding(node.config.data_dir, needles) == []
    assert not [p for p in _readable_payloads(node) if any(n in p for n in needles)]
    if url is not None:
        assert not [r for r in _postgres_rows(url) if any(n.decode() in r for n in needles)]
        assert _postgres_files_holding(url, needles) == []
    # everyone else untouched, in the log and in the views
    for _, note in others:
        assert any(note.encode() in p for p in _readable_payloads(node))
    with node.engine.connect() as conn:
        cipher = node.projector.cipher
        details = " ".join(
            str(cipher.open(DETAIL, r[0])) for r in conn.execute(text("SELECT detail FROM timeline_events"))
        )
    assert all(note in details for _, note in others)
    assert TARGET_NOTE not in details

    report = verify_log(app, workers=1)
    assert report.ok, report.first_bad
    erased_topics = sorted(t.rpartition(":")[2] for _, _, _, t, _ in report.erased)
    assert erased_topics == [
        "AccessRecord.ProtectedDetailsRead",
        "ErasureRequest.Requested",
        "ProtectionCase.Closed",
        "ProtectionCase.Opened",
    ]
    erasure = report.erasures[report.erased[0][4]]
    assert erasure["request"] == str(request) and erasure["approved_by"] == "admin2"
    # a rebuild after erasure does not fail on the erased events and equals the live views
    assert node.projector.rebuild() >= 0
