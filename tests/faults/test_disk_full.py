"""Disk full under an SQLite node: a real tiny filesystem (tmpfs in a private mount namespace), filled up.

With 0 and 24 KiB left free (``FLAGLEDGER_DISKFULL_FREE_KIB=0,8,24,64`` for more), a flag request →
approval → execution (+ projections) and a CLI ``flag request`` are tried. Each either succeeds or fails
with our StorageError (code ``disk_full`` or ``storage``) saying what to do; the log verifies while the
disk is full; once the ballast is deleted the same command succeeds; afterwards the node passes the
after-fault checks. Needs root (or user namespaces) for ``unshare -m`` and ``mount -t tmpfs``; skipped
where that is not allowed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.runtime.bootstrap import AgencySpec
from tests.conftest import B
from tests.faults.checks import assert_node_sound

ROOT = Path(__file__).resolve().parents[2]


def can_mount_tmpfs(where: Path) -> bool:
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"], capture_output=True
    )
    return probe.returncode == 0


def test_disk_full_fails_clearly_keeps_the_log_valid_and_recovers(make_node, tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if not can_mount_tmpfs(mount):
        pytest.skip("cannot mount a tmpfs in a private mount namespace here (needs root or user namespaces)")
    node = make_node((AgencySpec(B, "B市", "municipality"),), name="b")
    node.projector.catch_up()
    src = node.config.data_dir
    node.close()
    used = sum(f.stat().st_size for f in src.rglob("*") if f.is_file())
    out = tmp_path / "out"
    out.mkdir()
    size = used + (4 << 20)  # room for the copy, its WAL/shm files and the commands; the ballast takes the rest
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {mount} && "
        f"exec {sys.executable} -m tests.faults.diskfull_driver {src} {mount} {out}"
    )
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    failures = 0
    for row in report:
        full = row["full"]
        if not full["ok"]:
            failures += 1
            assert full["ours"], row  # never a raw driver error
            assert full["code"] in ("disk_full", "storage"), row
            assert "Free space" in full["message"] or "rebuild" in full["message"], row
        assert row["audit_ok_while_full"], row
        if row["cli_full"]["rc"] != 0:
            failures += 1
            stderr = row["cli_full"]["stderr"]
            assert row["cli_full"]["rc"] == 7 and "flagledger: error [disk_full]" in stderr, row
            assert "Free space" in stderr and "Traceback" not in stderr, row
        assert row["after"] == {"ok": True}, row  # space returned: the same command succeeds
        assert row["cli_after"]["rc"] == 0, row
        assert row["audit_ok_after"], row
    assert failures >= 2, report  # the full disk was actually hit, through the app and the CLI
    assert_node_sound(out / "node")
