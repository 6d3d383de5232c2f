"""``node-status.json`` is replaced whole and private; the node loop counts parked messages without reading them.

Threat: **another account on the same machine** (the status names parked messages and incidents: 0600, whatever
the umask) and plain operation — monitoring reads the file while the loop rewrites it several times a second,
and must never see half a file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from consumers.node_status import ParkedWatch, StatusFile
from ledger import files
from ledger.files import replace_private
from ledger.runtime.tables import parked_messages


def test_replace_private_is_0600_whatever_the_umask_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "node-status.json"
    old = os.umask(0)
    try:
        replace_private(target, "{}")
        target.chmod(0o644)  # an older release's file, readable by others: replaced by a private one
        replace_private(target, '{"parked": 1}')
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o600
    assert json.loads(target.read_text()) == {"parked": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["node-status.json"]


def test_a_failed_replace_keeps_the_old_file_and_removes_the_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "node-status.json"
    replace_private(target, '{"v": 1}')

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError):
        replace_private(target, '{"v": 2}')
    assert target.read_text() == '{"v": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["node-status.json"]


def test_a_reader_never_sees_half_a_status(tmp_path: Path) -> None:
    target = tmp_path / "node-status.json"
    versions = [json.dumps({"n": n, "pad": "x" * (4096 * (n % 7 + 1))}) for n in range(50)]
    replace_private(target, versions[0])
    done = threading.Event()
    seen: list[int] = []
    torn: list[str] = []

    def read() -> None:
        while not done.is_set():
            text = target.read_text()
            try:
                seen.append(json.loads(text)["n"])
            except ValueError:
                torn.append(text[:40])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20):
            for text in versions:
                replace_private(target, text)
    finally:
        done.set()
        reader.join()
    assert not torn, f"the reader saw a partial file {len(torn)} times"
    assert len(set(seen)) > 1  # the reader really read while the file was being replaced


def test_the_status_file_is_written_only_when_it_changed(tmp_path: Path) -> None:
    out = StatusFile(tmp_path / "node-status.json")
    assert out.write({"parked": 0})
    assert not out.write({"parked": 0})
    assert out.write({"parked": 1})
    (tmp_path / "node-status.json").unlink()  # someone removed it: written again even though unchanged
    assert out.write({"parked": 1})
    assert json.loads((tmp_path / "node-status.json").read_text()) == {"parked": 1}


def test_parked_messages_are_counted_by_the_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    parked_messages.create(engine)
    watch = ParkedWatch(engine)
    assert watch.count() == 0
    row = {"at": "2026-12-06T00:00:00+00:00", "code": "gap", "reason": "r", "source": "s", "envelope": b"x" * 1000}
    with engine.begin() as conn:
        conn.execute(parked_messages.insert(), [dict(row, status="parked"), dict(row, status="replayed")])
    assert watch.count() == 2  # every status, as `consumers parked` lists them
    engine.dispose()
