"""What the audit says around an erasure (issue 22): the same with worker processes, a key deleted without the
four-eyes erasure named, the views equal a rebuild, a stream begun before per-subject keys still read.

Threats: an administrator or shell user who deletes a person's data key alone (no second administrator, no
record in the log) is caught by ``audit verify``; an insider editing the views after an erasure is caught by
``audit views``.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.audit.views_check import check_views
from ledger.domain.cases import ProtectionCase
from ledger.errors import Code
from ledger.log.datakeys import DATA_KEYS_FILE
from ledger.log.subject_payload import ENC_DK1, ErasedPayload
from ledger.runtime.bootstrap import Node, open_node
from ledger.runtime.erasure_scrub import scrub_after_erasure
from ledger.runtime.subject_keys import reapply_erasures
from tests.conftest import A


def _erase(node: Node, subject: str) -> str:
    rid = node.app.request_erasure(Actor(A, "admin"), subject, "retention ended")
    node.app.approve_erasure(Actor(A, "admin2"), rid)
    scrub_after_erasure(node)
    return str(rid)


def test_workers_report_the_same_erasures_and_the_views_equal_a_rebuild(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Insider editing views after an erasure: `audit views` compares them with a rebuild that skips the erased
    events; the multi-process audit names the same erased events as the one-process audit."""
    node = sqlite_node
    subjects = [node.app.subject(person()) for _ in range(3)]
    for i, s in enumerate(subjects):
        node.app.open_case(Actor(A, "req"), s, notes=f"note {i}")
    rid = _erase(node, subjects[1])
    one = verify_log(node.app, workers=1)
    many = verify_log(node.app, workers=2, min_events=0)
    assert one.ok and many.ok, (one.first_bad, many.first_bad)
    assert one.erased == many.erased and len(one.erased) == 2
    assert {e["request"] for e in many.erasures.values()} == {rid}
    views = check_views(node)
    assert views.first_difference is None


def test_a_data_key_deleted_outside_erase_fails_the_audit(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Administrator or shell user deleting a person's key alone: the log records no erasure of it, so `audit
    verify` names the first event it leaves unreadable (code erased) instead of reporting an erasure."""
    node = sqlite_node
    node.app.open_case(Actor(A, "req"), person(), notes="kept by the law")
    data = node.config.data_dir
    node.close()
    with sqlite3.connect(data / DATA_KEYS_FILE) as db:
        assert db.execute("DELETE FROM subject_keys").rowcount == 1
    reopened = open_node(data, audit=True)
    try:
        report = verify_log(reopened.app, workers=1)
        assert report.first_bad is not None and report.first_bad.code == Code.ERASED
        assert report.first_bad.topic.endswith("ProtectionCase.Opened")
    finally:
        reopened.close()


def test_a_case_opened_before_per_subject_keys_keeps_reading_and_writing_as_before(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Insider reading an old log: events written before issue 22 stay as they were (the at-rest cipher only),
    later events of such a stream too, so the stream's chain and content read as before."""
    node = sqlite_node
    mapper = node.app.signed_mapper
    keys, mapper.data_keys = mapper.data_keys, None  # a release before per-subject keys
    try:
        case = node.app.open_case(Actor(A, "req"), person(), notes="old note")
    finally:
        mapper.data_keys = keys
    loaded = node.app.load(ProtectionCase, case, "case")
    loaded.close(by="req", note="closed after the upgrade")
    node.app.save_as(A, loaded)
    encs = [env.header.enc for _, _, env in node.app.envelopes() if env.header.stream == str(case)]
    assert encs == ["json", "json"]
    assert node.app.load(ProtectionCase, case, "case").notes == "old note"
    newer = node.app.open_case(Actor(A, "req"), person(), notes="new note")
    assert [env.header.enc for _, _, env in node.app.envelopes() if env.header.stream == str(newer)] == [ENC_DK1]
    assert verify_log(node.app, workers=1).ok


def test_a_restored_backup_does_not_bring_an_erased_person_back(
    sqlite_node: Node, person: Callable[[], str], tmp_path: Path
) -> None:
    """Insider or operator restoring an old copy of the data keys: the log's erasure record wins — the keys it
    names are destroyed again (``erase reapply``, and at node start) and the audit reports the erasure."""
    node = sqlite_node
    subject = node.app.subject(person())
    node.app.open_case(Actor(A, "req"), subject, notes="restored?")
    keys_file = node.config.data_dir / DATA_KEYS_FILE
    backup = tmp_path / "datakeys.backup"
    shutil.copy(keys_file, backup)
    _erase(node, subject)
    data = node.config.data_dir
    node.close()
    shutil.copy(backup, keys_file)
    reopened = open_node(data)
    try:
        case = next(env for _, _, env in reopened.app.envelopes() if env.header.topic.endswith("Case.Opened"))
        assert b"restored?" in reopened.app.signed_mapper.plaintext(case)  # the backup brought the key back
        assert reapply_erasures(reopened.app) == 1
        with pytest.raises(ErasedPayload):
            reopened.app.signed_mapper.plaintext(case)
        report = verify_log(reopened.app, workers=1)
        assert report.ok and len(report.erased) == 2
    finally:
        reopened.close()
